#!/usr/bin/env python3
"""Merge exact instruction counts into the runner's JSON lines.

    exact_counts.py RUNNER_STDOUT MARKER_COUNTS [FIELD] > merged.jsonl

RUNNER_STDOUT: the runner's stdout (JSON objects, one a line; other lines are
passed through unchanged).  MARKER_COUNTS: the QEMU plugin's out= file
(tools/insn_plugin.c) or tools/exec_log_count.py's output: the number of
instructions executed before the k-th call of wp_marker(), i.e. before the
firmware's counter read with seq == k.

Every object with a "seq": [a, b] field (invoke, op, calibrate events) gets
FIELD (default "exact_instructions") = counts[b] - counts[a]; the summary gets
FIELD_per_invoke and FIELD_unprofiled_per_invoke (min/max/mean over all
invokes / the un-profiled ones) and FIELD_whole_run (every instruction QEMU
executed, start-up included).  Standard library only.
"""
import json
import sys


def load_counts(path):
    counts, total = [], None
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "total":
                total = int(parts[1])
            else:
                counts.append(int(parts[0]))
    return counts, total


def stats(values):
    if not values:
        return None
    return {"min": min(values), "max": max(values), "mean": sum(values) // len(values)}


def merge(lines, counts, total, field="exact_instructions"):
    invokes, clean = [], []
    out = []
    for line in lines:
        text = line.rstrip("\n")
        if not text.startswith("{"):
            out.append(text)
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            out.append(text)
            continue
        seq = obj.get("seq")
        if isinstance(seq, list) and len(seq) == 2 and seq[1] < len(counts):
            a, b = seq
            obj[field] = counts[b] - counts[a]
            if obj.get("event") == "invoke":
                invokes.append(obj[field])
                if not obj.get("profiled"):
                    clean.append(obj[field])
        if obj.get("event") == "summary":
            obj[f"{field}_per_invoke"] = stats(invokes)
            obj[f"{field}_unprofiled_per_invoke"] = stats(clean)
            obj[f"{field}_whole_run"] = total
        out.append(json.dumps(obj, separators=(",", ":")))
    return out


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    counts, total = load_counts(sys.argv[2])
    field = sys.argv[3] if len(sys.argv) == 4 else "exact_instructions"
    with open(sys.argv[1]) as f:
        for line in merge(f, counts, total, field):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
