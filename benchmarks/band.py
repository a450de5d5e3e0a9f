"""The example health band (examples/band.yaml: heart rate on TROIKA, activity on HMP, sleep on
sleep-walch) planned on nRF52840 and Apollo4 Plus, each task's held-out subject replayed in TensorFlow
Lite Micro -> docs/band.md + docs/band.json (+ one replay plot per device).

    WEARPRUNE_DATA=../shared/data python benchmarks/band.py [--only DEVICE] [--render]

Resumable: each device's plan reuses its finished task folders under runs/bench-band/<device>/; each
finished device row is written to docs/band.json at once (with the commit it ran from).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from prune_vs_peers import commit_id  # noqa: E402  (a sibling script)

from wearprune.band import load_band_spec, plan, replay  # noqa: E402
from wearprune.band.report import CHANGE_HEAD, battery_rows, split_rows  # noqa: E402
from wearprune.io import atomic_write_json, atomic_write_text  # noqa: E402

DEVICES = ("nrf52840", "apollo4plus")
SPEC = ROOT / "examples" / "band.yaml"
WORK = ROOT / "runs" / "bench-band"
JSON = ROOT / "docs" / "band.json"
MD = ROOT / "docs" / "band.md"


def run_device(device: str, built_seconds: float = 0.0) -> dict:
    spec = replace(load_band_spec(SPEC), device=device)
    out = WORK / device
    # a band folder planned before (same spec): its variants are reused, and the build time is the one of the
    # invocation that built them
    before = json.loads((out / "band.json").read_text()).get("seconds", 0.0) if (out / "band.json").exists() else 0.0
    doc = plan(spec, out, log=print)
    doc["seconds"] = max(doc["seconds"], before, built_seconds)
    result = replay(out, log=print)
    shutil.copyfile(out / "replay" / "replay.png", ROOT / "docs" / f"band_replay_{device}.png")
    return {"device": device, "commit": commit_id(), "band": doc, "replay": result}


def render(rows: dict) -> str:
    lines = ["# The example health band on one chip", "",
             "`examples/band.yaml`: heart rate every 2 s from wrist PPG + accelerometer (TROIKA, ResNet1D, day), "
             "activity every 1 s from the wrist accelerometer (HMP, ResNet1D, day), sleep stage every 30 s epoch "
             "(sleep-walch, sleep_seq, night), on one chip with a 100 mAh battery; made by `benchmarks/band.py` "
             "(`wearprune band plan`, then `wearprune band replay` of each task's first test subject).", "",
             "How to read the numbers:", "",
             "- **Split**: each task's own named subject-wise split (TROIKA test subjects 05, 06, 09; HMP f2, f4, m1, "
             "m6; sleep-walch 8 of 31 subjects), a *single split*, not cross-validated: the plan's metrics and the "
             "floors are on each task's validation subjects; `test` columns are its test subjects.",
             "- **Measured**: model flash (.tflite bytes) and the TFLite Micro arena (recorder), int8 test metrics "
             "in the TFLite Micro interpreter on the host, the replay. **Estimated**: latency and energy per "
             "inference (the cost model on each device profile), and therefore battery days; the band's always-on "
             "baseline currents are *assumptions* (see the spec).",
             "- Variants per task: `dense` (the zoo model as trained), `fit` (what `wearprune fit` shipped within "
             "latency <= dense / 4 on that chip: the pruned winner, or a baseline that beat it on validation, named "
             "in brackets), "
             "`fit/2`, `fit/4` (the fit cut uniformly to 1/2 and 1/4 of its MACs, taylor, distilled).",
             "- Cross-validated evidence for what `fit` costs on two of these tasks (same models and data, nRF52840, "
             "latency <= dense / 5, the full search): [`budget.md`](budget.md) (HMP ResNet1D and TROIKA ResNet1D "
             "rows, paired over 4 folds). The validation groups here are small (TROIKA: 2 subjects), so a floor "
             "checked on them is noisy: a variant can pass on validation and lose on test, or the reverse.",
             "- Build times are wall time on 2 CPU cores shared with other benchmark processes; a row's commit is "
             "the one its last plan ran from (a re-plan reuses the task folders).", "", "## Summary", ""]
    for row in rows.values():
        doc = row["band"]
        days = {n: d for n, d, _ in battery_rows(doc)}
        plan_days = doc["plan"]["energy"]["days"]
        e = doc["plan"]["energy"]
        models = sum(e["per_task_j"].values())
        lines.append(f"- **{doc['device']['title']}**: all dense {days['all dense']:.1f} days -> all fitted "
                     f"{days['all fitted']:.1f} -> the plan {plan_days:.1f} ({plan_days / days['all dense']:.1f}x "
                     f"the dense band), the adaptive policy {doc['policy']['days']:.1f}; the models take "
                     f"{models / e['total_j']:.0%} of the plan's {e['total_j']:.1f} J a day, the always-on baseline "
                     f"{sum(e['baseline_j'].values()) / e['total_j']:.0%}; the shared arena is task "
                     f"{doc['plan']['memory']['arena_of']}'s ({doc['plan']['memory']['arena_bytes'] / 1024:.0f} KiB).")
    lines.append("")
    for device, row in rows.items():
        doc, rep = row["band"], row["replay"]
        dev = doc["device"]
        lines += [f"## {dev['title']} (commit {row['commit']}; variants built in {doc['seconds'] / 60:.0f} min)", "",
                  "### Variants", "",
                  "| task | variant | MACs | model KiB | arena KiB | latency ms (est.) | energy uJ (est.) | val | "
                  "test fp32 | test int8 (TFLM) |", "|---|---|---|---|---|---|---|---|---|---|"]
        for name, t in doc["tasks"].items():
            for v in t["variants"]:
                shipped = t.get("fit_shipped") if v["name"] == "fit" and t.get("fit_shipped") != "fit" else None
                label = f"{v['name']} (shipped {shipped})" if shipped else v["name"]
                lines.append(f"| {name} ({t['metric']}) | {label} | {v['macs']:,} | {v['model_bytes'] / 1024:.1f} "
                             f"| {v['arena_bytes'] / 1024:.1f} | {v['latency_ms']:.2f} | {v['energy_uj']:.1f} | "
                             f"{v['val']:.3f} | {v['test']:.3f} | {v['test_int8']:.3f} |")
        lines += ["", f"### The plan ({doc['objective']}): flash, RAM and energy split", "",
                  "| part | variant | flash KiB | RAM KiB | energy J/day |", "|---|---|---|---|---|"]
        lines += ["| " + " | ".join(r) + " |" for r in split_rows(doc["plan"])]
        lines += ["", "What binds: " + "; ".join(doc["binds"]) + ".", "", "### Battery days", "",
                  "| setting | days | variants |", "|---|---|---|"]
        lines += [f"| {n} | {d:.2f} | {c} |" for n, d, c in battery_rows(doc)]
        lines += ["", "### Policy", "", f"| level | above % | variants | days if fixed | {CHANGE_HEAD} |",
                  "|---|---|---|---|---|"]
        for r in doc["policy"]["levels"]:
            change = ", ".join(f"{k} {v:+.3f}" for k, v in r["test_int8_change_vs_top"].items())
            choice = ", ".join(f"{k}: {v}" for k, v in r["choice"].items())
            lines.append(f"| {r['level']} | {r['above_percent']:g} | {choice} | {r['days_if_fixed']:.2f} | {change} |")
        pm = doc["policy"]["memory"]
        lines += ["", f"The policy stores every variant it may switch to: {pm['flash_bytes'] / 1024:.1f} KiB of flash "
                  f"({pm['flash_use']:.0%}), RAM {pm['ram_bytes'] / 1024:.1f} KiB ({pm['ram_use']:.0%}); no weight "
                  "sharing between rungs (their sum is stored).", "", "### Replay (int8 in TFLite Micro, the plan's "
                  "variants)", "", "| task | subject | windows | recorded | metric |", "|---|---|---|---|---|"]
        for name, t in rep["tasks"].items():
            lines.append(f"| {name} | {t['subject']} | {t['windows']} | {t['recorded_s'] / 3600:.2f} h | "
                         f"{t['metric']} {t[t['metric']]:.3f} |")
        e = rep["energy"]
        slowest = min(t["faster_than_real_time"] for t in rep["tasks"].values())
        lines += ["", f"{rep['span_s'] / 3600:.2f} h of recordings replayed in {rep['wall_s']:.1f} s "
                  f"({rep['faster_than_real_time']:.0f}x real time for the longest recording; the slowest task "
                  f"{slowest:.0f}x); energy spent by the schedule over that span: "
                  f"{e['total_j']:.2f} J (models {e['models_j']:.3f} J, estimated). Plot: "
                  f"[band_replay_{device}.png](band_replay_{device}.png).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=DEVICES)
    parser.add_argument("--render", action="store_true", help="only rewrite docs/band.md from docs/band.json")
    parser.add_argument("--replan", action="store_true", help="plan and replay finished devices again from their "
                        "task folders (a changed floor, level or objective), keeping the recorded build time")
    args = parser.parse_args()
    rows = json.loads(JSON.read_text()) if JSON.exists() else {}
    if not args.render:
        for device in [args.only] if args.only else DEVICES:
            if device in rows and not args.replan:
                print(f"{device}: done (docs/band.json)")
                continue
            built = rows[device]["band"]["seconds"] if device in rows else 0.0
            rows[device] = run_device(device, built)
            atomic_write_json(JSON, rows)
    atomic_write_text(MD, render(rows))
    print(MD.read_text())


if __name__ == "__main__":
    main()
