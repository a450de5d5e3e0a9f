"""Render a report dictionary to report.json, report.md and one self-contained report.html
(plots embedded as base64 PNG, no external files or scripts)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from wearprune.io import atomic_write_bytes, atomic_write_text


def pyplot():
    """matplotlib on demand (importing wearprune stays fast), headless."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

ROWS = [("accuracy", "accuracy", "{:.3f}", "m"), ("macro recall", "macro_recall", "{:.3f}", "m"),
        ("macro F1", "macro_f1", "{:.3f}", "m"), ("MAE", "mae", "{:.2f}", "m"),
        ("parameters", "params", "{:,}", "x"), ("MACs / inference", "macs", "{:,}", "x"),
        ("flash (model + runtime)", "flash_bytes", "kib", "c"), ("peak RAM (arena)", "arena_bytes", "kib", "c"),
        ("latency", "latency_ms", "{:.2f} ms", "c"), ("energy / inference", "energy_uj", "{:.1f} uJ", "c"),
        ("battery life", "battery_hours", "hours", "c")]


def write_report(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write the three files into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    atomic_write_text(paths["json"], json.dumps(report, indent=1, default=float))
    atomic_write_text(paths["md"], to_markdown(report))
    atomic_write_bytes(paths["html"], to_html(report).encode())
    return paths


def _fmt(value, fmt: str) -> str:
    if value is None:
        return "-"
    if fmt == "kib":
        return f"{value / 1024:.1f} KiB"
    if fmt == "hours":
        return f"{value / 24:.1f} days" if value >= 48 else f"{value:.1f} h"
    return fmt.format(value)


def table_rows(report: dict) -> list[list[str]]:
    rows = []
    for label, key, fmt, where in ROWS:
        values = [(r["metrics"] if where == "m" else r["cost"]).get(key) for r in report["runs"]]
        if all(v is None for v in values):
            continue
        tag = {"m": "measured", "x": "exact count", "c": "estimated"}[where]
        rows.append([f"{label} ({tag})"] + [_fmt(v, fmt) for v in values])
    key = report["primary_metric"]
    for dtype in ("fp32", "int8"):  # what `wearprune export` measured in TFLite Micro, side by side
        measured = [(r.get("measured_on_device") or {}).get(dtype) for r in report["runs"]]
        measured = [m if m and "skipped" not in m else None for m in measured]
        if any(measured):
            rows.append([f"TFLite Micro arena, {dtype} (measured)"]
                        + [_fmt(m and m["arena_bytes"], "kib") for m in measured])
            rows.append([f"{key} in TFLite Micro, {dtype} (measured)"]
                        + [_fmt(m and m.get(key), "{:.3f}") for m in measured])
    rows += _on_target_rows(report["runs"])
    if any(r.get("privacy") for r in report["runs"]):
        dp = [r.get("privacy") or {} for r in report["runs"]]
        rows.append(["DP ε, this run's trainings (accountant)"]
                    + [f"{d['epsilon']:.2f} ({d['accountant']})" if d.get("epsilon") is not None else "-" for d in dp])
        rows.append(["DP ε, whole model (with its parents)"]
                    + [("no guarantee" if not d.get("epsilon_total") else f"{d['epsilon_total']:.2f}") if d else "-"
                       for d in dp])
        rows.append(["DP δ / noise multiplier"] + [f"{d['delta']:.2g} / {d['noise_multiplier']:.2f}"
                                                   if d.get("noise_multiplier") else "-" for d in dp])
    rows.append(["compression (params, x)"] + [f"{r['vs_baseline']['compression']:.2f}x" for r in report["runs"]])
    rows.append(["verdict on " + report["device"]["name"]] + [_verdict(r) for r in report["runs"]])
    return rows


def _on_target_rows(runs: list[dict]) -> list[list[str]]:
    """What `wearprune measure` counted on an emulated core, one row per core and dtype any run has."""
    keys = list(dict.fromkeys((t, d) for r in runs for t, per in (r.get("on_target") or {}).items() for d in per))
    rows = []
    for target, dtype in keys:
        cells = []
        for r in runs:
            m = ((r.get("on_target") or {}).get(target) or {}).get(dtype)
            if not m:
                cells.append("-")
            elif m.get("form") == "streaming":
                cells.append(f"{m['instructions_per_window']:,} ({m['instructions_per_frame']:,} per frame)")
            else:
                cells.append(f"{m['instructions_per_inference']:,}")
        rows.append([f"instructions per inference on {target}, {dtype} (measured: instruction count, QEMU)"] + cells)
    return rows


def _verdict(run: dict) -> str:
    c = run["cost"]
    word = "fits" if c["fits"] else "does not fit"
    return f"{word} (binding: {c['binding']}; RAM {100 * c['ram_use']:.0f} %, flash {100 * c['flash_use']:.0f} %)"


def to_markdown(report: dict) -> str:
    dev = report["device"]
    names = [r["name"] for r in report["runs"]]
    lines = [f"# wearprune report: {', '.join(names)} on {dev['title']}", "",
             f"- device profile: `{dev['name']}` ({dev['core']}, {dev['clock_mhz']:g} MHz, {dev['sram_kb']:g} KB SRAM, "
             f"{dev['flash_kb']:g} KB flash; kernels: {dev['kernel_library']})",
             f"- dtype costed: {report['dtype']}; duty cycle: {report['inferences_per_min']:g} inferences per minute",
             f"- {report['labels']['metrics']}", f"- {report['labels']['cost']}",
             f"- split: {report['runs'][0].get('split')}", "",
             "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(report)]
    for r in report["runs"]:
        if r["cost"]["notes"]:
            lines += ["", f"Note ({r['name']}): " + "; ".join(r["cost"]["notes"])]
    lines += _robustness_lines(report)
    lines += ["", "## Per-layer widths", "", "| layer | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    layers = list(dict.fromkeys(k for r in report["runs"] for k in r["widths"]))
    for layer in layers:
        cells = " | ".join(str(r["widths"].get(layer, "removed")) for r in report["runs"])
        lines.append(f"| {layer} | {cells} |")
    return "\n".join(lines) + "\n"


def robustness_rows(report: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of each robustness evaluation and membership audit the report found."""
    tables = []
    for doc in report.get("robustness", []):
        eps = sorted({e for r in doc["runs"] for e in ((r.get("attacks") or {}).get("pgd") or {})}, key=float)
        header = ["run", "clean", "mean corruption", "worst corruption", "mCE", "relative mCE"] + [
            f"PGD eps {e}" for e in eps]
        rows = [[Path(r["run"]).name, f"{r['clean']:.3f}", f"{r['mean_corruption']:.3f}",
                 f"{r['worst']} ({r['per_corruption_mean'][r['worst']]:.3f})", _fmt(r.get("mce"), "{:.2f}"),
                 _fmt(r.get("relative_mce"), "{:.2f}")]
                + [_fmt(((r.get("attacks") or {}).get("pgd") or {}).get(e), "{:.3f}") for e in eps]
                for r in doc["runs"]]
        tables.append((f"Robustness to wearable corruptions ({doc['engine']}; {doc['runs'][0]['metric']} on the test "
                        f"subjects, {doc['split']}; CE against {Path(doc['reference']).name}; {doc['source']})",
                       header, rows))
        if all(r.get("per_class_recall") for r in doc["runs"]):
            first = doc["runs"][0]["per_class_recall"]
            header = ["run"] + [f"{c} (n={n})" for c, n in zip(first["classes"], first["support"], strict=True)]
            rows = [[Path(r["run"]).name] + [f"{c:.2f} → {m:.2f}" if n else "-" for c, m, n in zip(
                r["per_class_recall"]["clean"], r["per_class_recall"]["mean_corruption"], first["support"],
                strict=True)] for r in doc["runs"]]
            tables.append(("Recall (sensitivity) per class under the same corruptions: clean → mean over every "
                           f"corruption and severity 1-5 ({doc['engine']}; {doc['split']})", header, rows))
    for doc in report.get("audit", []):
        header = ["run", "engine", "loss-threshold AUC", "TPR at 1 % FPR", "class-calibrated AUC", "TPR at 1 % FPR",
                  "DP ε"]
        rows = [[Path(r["run"]).name, r["engine"]]
                + [_fmt((r.get(a) or {}).get(k), "{:.3f}") for a in ("loss_threshold", "class_calibrated")
                   for k in ("auc", "tpr_at_1pct_fpr")] + [_fmt(r.get("dp_epsilon"), "{:.2f}")] for r in doc["runs"]]
        tables.append((f"Membership inference audit (members: {doc['members']}; non-members: {doc['nonmembers']}; "
                       f"AUC 0.5 = the attack cannot tell them apart; {doc['source']})", header, rows))
    return tables


def _robustness_lines(report: dict) -> list[str]:
    lines = []
    for title, header, rows in robustness_rows(report):
        lines += ["", f"## {title}", "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    for doc in report.get("robustness", []):
        if doc.get("png"):
            lines += ["", f"Curves (metric vs severity per corruption): `{doc['png']}`"]
    return lines


def robustness_html(report: dict) -> str:
    """The robustness and audit tables, and each evaluation's curves (PNG embedded)."""
    parts = []
    for title, header, rows in robustness_rows(report):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>")
    for doc in report.get("robustness", []):
        png = Path(doc["png"]) if doc.get("png") else None
        if png is not None and png.is_file():
            b64 = base64.b64encode(png.read_bytes()).decode()
            parts.append(f"<figure><img alt='robustness curves' src='data:image/png;base64,{b64}'><figcaption>"
                         "metric vs severity per corruption</figcaption></figure>")
    return "".join(parts)


def png_bytes(fig) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return buf.getvalue()


def png_base64(fig) -> str:
    """A figure as base64 PNG text, for an <img> inside a self-contained HTML page."""
    return base64.b64encode(png_bytes(fig)).decode()


def widths_plot(report: dict) -> str:
    runs = report["runs"]
    layers = list(dict.fromkeys(k for r in runs for k in r["widths"]))
    fig, ax = pyplot().subplots(figsize=(max(6, 0.45 * len(layers) + 2), 3.6))
    w = 0.8 / len(runs)
    for i, r in enumerate(runs):
        ax.bar([j + i * w for j in range(len(layers))], [r["widths"].get(k, 0) for k in layers], w, label=r["name"])
    ax.set_xticks([j + 0.4 - w / 2 for j in range(len(layers))], layers, rotation=70, fontsize=7)
    ax.set_ylabel("output width (channels / units)")
    ax.set_title("Per-layer widths (exact, from the model)")
    ax.legend(fontsize=7)
    return png_base64(fig)


def pareto_front(points: list[tuple[float, float]], higher_is_better: bool) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and metric."""
    front = []
    for i, (c, m) in enumerate(points):
        dominated = any((c2 <= c and (m2 >= m if higher_is_better else m2 <= m)) and (c2, m2) != (c, m)
                        for c2, m2 in points)
        if not dominated:
            front.append(i)
    return front


def pareto_plot(report: dict, cost_key: str, label: str) -> str | None:
    key = report["primary_metric"]
    runs = [r for r in report["runs"] if key in r["metrics"]]
    if not runs:
        return None
    pts = [(r["cost"][cost_key], r["metrics"][key]) for r in runs]
    front = set(pareto_front(pts, higher_is_better=key != "mae"))
    fig, ax = pyplot().subplots(figsize=(5.5, 3.6))
    for i, ((c, m), r) in enumerate(zip(pts, runs)):
        ax.scatter(c, m, color="C3" if i in front else "C0", zorder=3)
        ax.annotate(r["name"], (c, m), fontsize=7, xytext=(4, 4), textcoords="offset points")
    fp = sorted(pts[i] for i in front)
    ax.plot([p[0] for p in fp], [p[1] for p in fp], color="C3", lw=1, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel(f"{key} (measured)")
    ax.set_title(f"{key} vs {label}")
    ax.legend(fontsize=7)
    return png_base64(fig)


def search_plot(report: dict) -> str | None:
    """`wearprune fit`'s candidates: validation score vs estimated energy and latency, the Pareto
    front and the winner marked (present when the report comes from a fit)."""
    search = report.get("search")
    if not search or not search.get("candidates"):
        return None
    from matplotlib import ticker

    cands = search["candidates"]
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 3.6))
    for ax, cost, label in ((axes[0], "est_energy_uj", "energy per inference (uJ, estimated)"),
                            (axes[1], "est_latency_ms", "latency (ms, estimated)")):
        front = set(search["pareto"].get(cost, []))
        for c in cands:  # fill: within every limit or not; red edge: on the front
            ax.scatter(c[cost], c["val_score"], color="C0" if c["feasible"] else "0.75", s=18, zorder=3,
                       edgecolors="C3" if c["number"] in front else "none", linewidths=1.2)
        win = [c for c in cands if c["number"] == search["winner"]]
        if win:
            ax.scatter(win[0][cost], win[0]["val_score"], marker="*", s=120, color="C2", zorder=4, label="winner")
        fp = sorted((c[cost], c["val_score"]) for c in cands if c["number"] in front)
        ax.plot([p[0] for p in fp], [p[1] for p in fp], color="C3", lw=1, label="Pareto front")
        if search.get("limit", {}).get(cost) is not None:
            ax.axvline(search["limit"][cost], color="k", ls="--", lw=0.8, label="limit")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.ScalarFormatter())  # plain numbers: the range is narrow
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.set_ylabel(search["score_label"])
        ax.legend(fontsize=7)
    fig.suptitle("search candidates (blue: within every limit, fine-tuned; grey: over a limit, not fine-tuned; "
                 "red edge: Pareto front)", fontsize=9)
    return png_base64(fig)


def to_html(report: dict) -> str:
    dev = report["device"]
    names = [r["name"] for r in report["runs"]]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table_rows(report))
    figs = [("Per-layer widths", widths_plot(report)),
            ("Accuracy vs MACs", pareto_plot(report, "macs", "MACs per inference (exact count)")),
            (f"Accuracy vs energy on {dev['name']}",
             pareto_plot(report, "energy_uj", f"energy per inference on {dev['name']} (uJ, estimated)")),
            ("Search candidates", search_plot(report))]
    imgs = "".join(f"<figure><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'><figcaption>"
                   f"{html.escape(t)}</figcaption></figure>" for t, b in figs if b)
    sources = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in dev["sources"].items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>wearprune report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}
figure{{display:inline-block;margin:1em}}</style></head><body>
<h1>wearprune report on {html.escape(dev['title'])}</h1>
<p>{html.escape(report['labels']['metrics'])}.<br>{html.escape(report['labels']['cost'])}.<br>
dtype costed: {report['dtype']}; {report['inferences_per_min']:g} inferences per minute;
split: {html.escape(str(report['runs'][0].get('split')))}.</p>
<table><tr><th></th>{head}</tr>{body}</table>
{imgs}
{robustness_html(report)}
<h2>Where the device numbers come from</h2><ul>{sources}</ul>
</body></html>
"""
