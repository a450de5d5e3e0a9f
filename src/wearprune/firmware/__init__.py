"""TensorFlow Lite Micro with CMSIS-NN kernels on an emulated Cortex-M: build once, run a ``.tflite``, count.

The files beside this module are the firmware (runner, startup code, linker scripts, a QEMU plugin) and the
two scripts that build and run it; ``NOTES.md`` says how each works and what was checked. This module is their
Python face: :func:`build` compiles TFLite Micro and the runner from ``../shared/third_party`` into a cache
folder (once per core and TFLite Micro commit), :func:`run_on_target` runs a model in ``qemu-system-arm`` and
returns its outputs with *executed instruction* counts (QEMU is not cycle-accurate; instructions are what it
can count exactly). The toolchain comes from Debian packages; without it every entry point raises one
:class:`ConfigError` line naming the ``apt-get`` command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from wearprune.errors import ConfigError

HERE = Path(__file__).resolve().parent
# core -> the QEMU board that emulates it (what run.sh passes to -M)
TARGETS = {"cortex-m4": "mps2-an386", "cortex-m33": "mps2-an505", "cortex-m55": "mps3-an547"}
APT_INSTALL = "apt-get install -y gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-nm", "qemu-system-arm", "make")
COUNTER = ("executed instructions, exact (QEMU TCG plugin; the firmware's SysTick under -icount agrees within "
           "one tick)")


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    return target


def missing_tools() -> list[str]:
    """The programs the firmware needs that are not on PATH."""
    return [t for t in _TOOLS if shutil.which(t) is None]


def require_tools() -> None:
    """One line naming the install command when the toolchain or QEMU is missing."""
    missing = missing_tools()
    if missing:
        raise ConfigError(f"{missing[0]} not found: measuring on an emulated Cortex-M needs the Arm toolchain and "
                          f"QEMU; install them with: {APT_INSTALL}")


def cache_dir() -> Path:
    """Where the TFLite Micro build lives: $WEARPRUNE_FIRMWARE_CACHE, else $WEARPRUNE_CACHE/firmware, else
    ~/.cache/wearprune/firmware (a few hundred MB per core)."""
    explicit = os.environ.get("WEARPRUNE_FIRMWARE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("WEARPRUNE_CACHE", "")
    if not base or base.lower() in ("0", "off", "none"):
        base = str(Path.home() / ".cache" / "wearprune")
    return Path(base).expanduser() / "firmware"


def third_party_dir() -> Path:
    """The source archives: $WEARPRUNE_THIRD_PARTY, else ``third_party`` beside the data root
    ($WEARPRUNE_DATA = ../shared/data), else ../shared/third_party beside this source checkout."""
    explicit = os.environ.get("WEARPRUNE_THIRD_PARTY")
    if explicit:
        return Path(explicit).expanduser()
    data = os.environ.get("WEARPRUNE_DATA")
    if data and (Path(data).expanduser().parent / "third_party").is_dir():
        return Path(data).expanduser().parent / "third_party"
    return HERE.parents[3] / "shared" / "third_party"


@dataclass(frozen=True)
class Firmware:
    target: str
    elf: Path
    tflm_commit: str
    cache: Path


def build(target: str, *, announce=None) -> Firmware:
    """The runner firmware for ``target``, building TFLite Micro first when the cache lacks it (several
    minutes on 2 cores; later calls take a second). ``announce(line)`` hears what the build is doing."""
    check_target(target)
    require_tools()
    cache = cache_dir()
    env = {**os.environ, "WEARPRUNE_THIRD_PARTY": str(third_party_dir())}
    proc = subprocess.Popen(["bash", str(HERE / "build.sh"), str(cache), target], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    err_lines = []
    for line in proc.stderr:  # build.sh narrates on stderr (extracting, building, reusing)
        err_lines.append(line.rstrip())
        if announce and re.match(r"build\.sh: (extract|build)", line):  # the slow steps, not "reusing"
            announce(line.rstrip())
    out = proc.stdout.read()
    if proc.wait() != 0:
        errors = [ln for ln in err_lines if "error:" in ln] or err_lines[-1:] or ["no output"]
        raise ConfigError(errors[-1].replace("build.sh: error: ", f"building the {target} firmware: "))
    elf = Path(out.strip().splitlines()[-1])
    commit = re.search(r"tflm-([0-9a-fA-F]+)/", "\n".join(err_lines))
    return Firmware(target, elf, commit.group(1) if commit else "unknown", cache)


@dataclass
class TargetRun:
    """What the runner reported for one model: per invoke and per op instruction counts, memory, outputs."""

    model: dict
    invokes: list[dict]
    ops: list[dict]
    summary: dict
    outputs: bytes
    errors: list[dict] = field(default_factory=list)

    @staticmethod
    def count(event: dict) -> int:
        """The exact count where the plugin gave one, else the on-target counter."""
        return int(event.get("exact_instructions", event["instructions"]))

    def per_invoke(self) -> list[int]:
        """Instructions of every invoke without the profiler (the first invoke carries per-op markers and is
        dropped when there are others)."""
        plain = [self.count(e) for e in self.invokes if not e.get("profiled")]
        return plain or [self.count(e) for e in self.invokes]

    def per_op(self) -> list[dict]:
        """The profiled invoke's ops in order: ``{"index", "op", "instructions"}``."""
        first = min(((e["window"], e["run"]) for e in self.ops), default=None)
        return [{"index": e["index"], "op": e["op"], "instructions": self.count(e)} for e in self.ops
                if (e["window"], e["run"]) == first]


_FIRMWARE_EXIT = {1: "the runner refused the model or its input", 2: "the tensor arena is too small",
                  3: "the emulated CPU faulted", 124: "QEMU timed out"}


def run_on_target(firmware: Firmware, model: bytes, inputs: bytes, *, runs: int = 1, timeout_s: int = 600,
                  arena_bytes: int = 4 * 1024 * 1024) -> TargetRun:
    """Run ``model`` on the emulated core over ``inputs`` (windows back to back, each every input tensor's raw
    bytes concatenated), ``runs`` invokes per window; the first invoke is profiled per op."""
    with tempfile.TemporaryDirectory(prefix="wearprune-fw-") as tmp:
        t = Path(tmp)
        (t / "model.tflite").write_bytes(model)
        (t / "input.bin").write_bytes(inputs)
        cmd = ["bash", str(HERE / "run.sh"), str(firmware.cache), firmware.target, "--model", str(t / "model.tflite"),
               "--input", str(t / "input.bin"), "--output", str(t / "output.bin"), "--runs", str(runs),
               "--arena", str(arena_bytes), "--timeout", str(timeout_s)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        events = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.startswith("{")]
        outputs = (t / "output.bin").read_bytes() if (t / "output.bin").is_file() else b""
    kinds: dict[str, list[dict]] = {}
    for e in events:
        kinds.setdefault(e.get("event", ""), []).append(e)
    problems = kinds.get("error", []) + kinds.get("fault", [])
    if proc.returncode != 0 or "summary" not in kinds:
        why = _FIRMWARE_EXIT.get(proc.returncode, f"exit status {proc.returncode}")
        detail = problems[0] if problems else (proc.stderr.strip().splitlines() or [""])[-1]
        raise ConfigError(f"the model did not run on the emulated {firmware.target}: {why} ({detail})")
    return TargetRun(kinds["model"][0], kinds.get("invoke", []), kinds.get("op", []), kinds["summary"][0], outputs,
                     problems)
