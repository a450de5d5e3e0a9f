#!/usr/bin/env python3
"""Exact instruction counts from a QEMU single-step execution log.

    qemu-system-arm ... -singlestep -d exec,nochain -D exec.log ...
    exec_log_count.py exec.log MARKER_ADDR > marker_counts.txt

With -singlestep every translated block is one instruction and `-d exec,nochain`
logs a "Trace ..." line for each block execution, so the number of Trace lines
is the number of executed instructions, after two corrections for blocks that
were logged but did not run:
  "Stopped execution of TB chain before ..."  the block was entered and left
      before its instruction (exit request: -icount budget or a CPU kick);
  "cpu_io_recompile: rewound execution of TB ..."  (-icount) the block touched
      an I/O register, was abandoned and re-run as a new block, so the
      instruction is logged twice.
Each such line cancels one Trace line.

Prints, like the QEMU plugin (tools/insn_plugin.c), the number of instructions
executed before each entry into the marker address (one line per entry,
"total N" last), so tools/exact_counts.py can read either.
"""
import re
import sys

TRACE = re.compile(rb"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")


def count(path: str, marker: int):
    executed = 0
    stamps = []
    last_was_marker = False
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(b"Trace"):
                m = TRACE.match(line)
                last_was_marker = bool(m) and int(m.group(1), 16) == marker
                if last_was_marker:
                    stamps.append(executed)
                executed += 1
            elif line.startswith((b"cpu_io_recompile: rewound", b"Stopped execution of TB chain")):
                executed -= 1  # the last Trace line did not execute
                if last_was_marker:
                    stamps.pop()
                last_was_marker = False
    return stamps, executed


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    stamps, total = count(sys.argv[1], int(sys.argv[2], 0) & ~1)
    out = sys.stdout
    for s in stamps:
        out.write(f"{s}\n")
    out.write(f"total {total}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
