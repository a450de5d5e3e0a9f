"""The band's report: ``BAND/report.md`` and a self-contained ``BAND/report.html`` (plots embedded)
with the flash / RAM / energy split per task and battery days: all dense, all fitted, the plan,
each policy level held fixed, and the adaptive policy."""

from __future__ import annotations

import html
from pathlib import Path

from ..io import atomic_write_bytes, atomic_write_text
from ..report.render import png_base64, pyplot
from .ledger import meets


def battery_rows(doc: dict) -> list[tuple[str, float, str]]:
    """(setting, battery days, choice) for the comparison table."""
    rows = [(name, c["energy"]["days"], _choice(c["choice"])) for name, c in doc["fixed"].items()]
    rows.insert(2, ("plan (" + doc["objective"] + ")", doc["plan"]["energy"]["days"], _choice(doc["plan"]["choice"])))
    levels = ", ".join(f"{r['level']} >{r['above_percent']:g} %" for r in doc["policy"]["levels"])
    rows.append((f"adaptive policy ({levels})", doc["policy"]["days"], "switches by battery level"))
    return rows


def _choice(choice: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in choice.items())


def variant_rows(doc: dict) -> list[list[str]]:
    rows = []
    for name, t in doc["tasks"].items():
        for v in t["variants"]:
            baseline = v["name"] == "fit" and t.get("fit_shipped") not in (None, "fit")
            shipped = f" ({t['fit_shipped']})" if baseline else ""
            rows.append([name, v["name"] + shipped, f"{v['macs']:,}", f"{v['model_bytes'] / 1024:.1f}",
                         f"{v['arena_bytes'] / 1024:.1f}", f"{(v['window_bytes'] + v['state_bytes']) / 1024:.2f}",
                         f"{v['latency_ms']:.2f}", f"{v['energy_uj']:.1f}", f"{v['val']:.3f}", f"{v['test']:.3f}",
                         f"{v['test_int8']:.3f}", "yes" if meets(v["val"], t["floor"], t["metric"]) else "no"])
    return rows


VARIANT_HEAD = ["task", "variant", "MACs", "model KiB (measured)", "arena KiB (measured)", "buffers KiB",
                "latency ms (est.)", "energy uJ (est.)", "val", "test fp32", "test int8 (TFLM)", "meets floor"]


def split_rows(combo: dict) -> list[list[str]]:
    m, e = combo["memory"], combo["energy"]
    rows = [[t, v, f"{m['flash_per_task'][t] / 1024:.1f}", f"{m['buffers_per_task'][t] / 1024:.2f}",
             f"{e['per_task_j'][t]:.3f}"] for t, v in combo["choice"].items()]
    rows.append(["TFLite Micro runtime", "-", f"{m['flash_runtime_bytes'] / 1024:.1f}", "-", "-"])
    rows.append([f"shared arena (largest: {m['arena_of']})", "-", "-", f"{m['arena_bytes'] / 1024:.1f}", "-"])
    rows.append(["MCU asleep", "-", "-", "-", f"{e['mcu_sleep_j']:.3f}"])
    rows += [[f"baseline: {k}", "-", "-", "-", f"{v:.3f}"] for k, v in e["baseline_j"].items()]
    rows.append(["total", "-", f"{m['flash_bytes'] / 1024:.1f}", f"{m['ram_bytes'] / 1024:.1f}", f"{e['total_j']:.3f}"])
    return rows


SPLIT_HEAD = ["part", "variant", "flash KiB", "RAM KiB", "energy J/day"]
CHANGE_HEAD = "test int8 change vs top level (macro-F1: + is better; MAE: + is worse)"


def to_markdown(doc: dict) -> str:
    dev, plan = doc["device"], doc["plan"]
    lines = [f"# Band plan on {dev['title']}", "",
             f"Objective: {doc['objective']}" + (f", at least {doc['min_days']:g} days" if doc["min_days"] else "")
             + f". Battery: {doc['spec']['battery']['mah']:g} mAh at {doc['spec']['battery']['volts']:g} V.",
             "", *(f"- {v}" for v in doc["labels"].values()), "", "## Variants per task", "",
             _md(VARIANT_HEAD, variant_rows(doc)), "", "## The plan: flash, RAM and energy split", "",
             _md(SPLIT_HEAD, split_rows(plan)), "",
             f"Battery life: **{plan['energy']['days']:.2f} days**; flash {plan['memory']['flash_use']:.0%}, RAM "
             f"{plan['memory']['ram_use']:.0%} of the chip.", "", "What binds:", "",
             *(f"- {b}" for b in doc["binds"]), "", "## Battery days", "",
             _md(["setting", "days", "variants"], [[n, f"{d:.2f}", c] for n, d, c in battery_rows(doc)]), "",
             "## Policy: battery level -> variant per task", "",
             _md(["level", "above %", "variants", "days if fixed", CHANGE_HEAD],
                 [[r["level"], f"{r['above_percent']:g}", _choice(r["choice"]), f"{r['days_if_fixed']:.2f}",
                   ", ".join(f"{k} {v:+.3f}" for k, v in r["test_int8_change_vs_top"].items())]
                  for r in doc["policy"]["levels"]]), "",
             f"Policy flash (every variant it switches to): {doc['policy']['memory']['flash_bytes'] / 1024:.1f} KiB "
             f"({doc['policy']['memory']['flash_use']:.0%}); {doc['policy']['flash_note']}.", ""]
    return "\n".join(lines)


def _md(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(out + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def _html_table(head: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{b}</table>"


def split_plot(combo: dict, title: str) -> str:
    m, e = combo["memory"], combo["energy"]
    tasks = list(combo["choice"])
    fig, axes = pyplot().subplots(1, 3, figsize=(12, 3.4))
    parts = [("flash (KiB)", {"runtime": m["flash_runtime_bytes"] / 1024, **{t: m["flash_per_task"][t] / 1024
                                                                                for t in tasks}}),
             ("RAM (KiB)", {"shared arena": m["arena_bytes"] / 1024, **{t: m["buffers_per_task"][t] / 1024
                                                                        for t in tasks}}),
             ("energy (J/day)", {**{t: e["per_task_j"][t] for t in tasks}, "MCU asleep": e["mcu_sleep_j"],
                                 **e["baseline_j"]})]
    for ax, (label, values) in zip(axes, parts):
        bottom = 0.0
        for name, v in values.items():
            ax.bar([0], [v], bottom=bottom, label=name)
            bottom += v
        ax.set_xticks([])
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    return png_base64(fig)


def days_plot(doc: dict) -> str:
    rows = battery_rows(doc)
    fig, ax = pyplot().subplots(figsize=(7, 0.45 * len(rows) + 1))
    ax.barh([r[0] for r in rows][::-1], [r[1] for r in rows][::-1], color="tab:green")
    ax.set_xlabel("battery days (energy estimated)")
    return png_base64(fig)


def write_band_report(doc: dict, out: Path) -> dict[str, Path]:
    dev = doc["device"]
    paths = {"md": out / "report.md", "html": out / "report.html"}
    atomic_write_text(paths["md"], to_markdown(doc))
    figs = [("Flash, RAM and energy split of the plan", split_plot(doc["plan"], "the plan")),
            ("Battery days", days_plot(doc))]
    imgs = "".join(f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'><figcaption>"
                   f"{html.escape(t)}</figcaption></figure>" for t, b in figs)
    policy = _html_table(["level", "above %", "variants", "days if fixed", CHANGE_HEAD],
                         [[r["level"], f"{r['above_percent']:g}", _choice(r["choice"]), f"{r['days_if_fixed']:.2f}",
                           ", ".join(f"{k} {v:+.3f}" for k, v in r["test_int8_change_vs_top"].items())]
                          for r in doc["policy"]["levels"]])
    labels = "".join(f"<li>{html.escape(v)}</li>" for v in doc["labels"].values())
    binds = "".join(f"<li>{html.escape(b)}</li>" for b in doc["binds"])
    sources = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in dev["sources"].items())
    base = "".join(f"<li><b>{html.escape(b['name'])}</b>: {b['uw']:.1f} uW, {b['hours']:g} h/day ("
                   f"{html.escape(b['source'])})</li>" for b in doc["spec"].get("baseline", []))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>wearprune band plan</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}
figure{{display:inline-block;margin:1em}}</style></head><body>
<h1>Band plan on {html.escape(dev['title'])}</h1>
<p>Objective: {html.escape(doc['objective'])}. Battery life of the plan:
<b>{doc['plan']['energy']['days']:.2f} days</b>.</p><ul>{labels}</ul>
<h2>Variants per task</h2>{_html_table(VARIANT_HEAD, variant_rows(doc))}
<h2>The plan: budget split</h2>{_html_table(SPLIT_HEAD, split_rows(doc['plan']))}
<h3>What binds</h3><ul>{binds}</ul>
<h2>Battery days</h2>{_html_table(["setting", "days", "variants"],
                                  [[n, f"{d:.2f}", c] for n, d, c in battery_rows(doc)])}
<h2>Policy</h2>{policy}<p>{html.escape(doc['policy']['flash_note'])}.</p>
{imgs}
<h2>Where the numbers come from</h2><ul>{base}</ul><ul>{sources}</ul>
</body></html>
"""
    atomic_write_bytes(paths["html"], page.encode())
    return paths
