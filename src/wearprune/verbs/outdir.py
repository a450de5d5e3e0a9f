"""Refuse a bad ``--out`` before any work, not after minutes of training or searching."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import ConfigError


def check_out(out: str | os.PathLike | None, overwrite: bool) -> None:
    """``out`` must not exist (unless ``overwrite``) and its folder must take new files: a real
    write is tried, since permission bits say nothing on a read-only mount or for root."""
    if out is None:
        return
    out = Path(out)
    if (out.exists() or out.is_symlink()) and not overwrite:  # a dangling link counts as taken
        raise ConfigError(f"{out} already exists; choose another --out or pass --overwrite")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a run directory; choose another --out")
    folder = out.absolute().parent
    while not folder.exists():  # the nearest folder that exists is where the first write happens
        folder = folder.parent
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".wearprune-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"cannot write into {folder} ({e.strerror or e}); choose another --out") from None
