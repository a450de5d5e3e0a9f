"""Keep the command line's output ours: litert-torch, torchao and TensorFlow Lite Micro print
progress lines and warnings, some from C++ straight to file descriptor 2."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings


class CaptureFd2:
    """Redirect file descriptor 2 into a temporary file; ``.text`` holds what was printed."""

    def __enter__(self):
        self._tmp = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._tmp.seek(0)
        self.text = self._tmp.read().decode(errors="replace")
        self._tmp.close()
        return False


@contextlib.contextmanager
def quiet():
    """Silence Python warnings, stdout/stderr and fd 2 for the duration (converter chatter)."""
    logging.getLogger("absl").setLevel(logging.ERROR)
    logging.getLogger("torchao").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(
        io.StringIO()
    ), CaptureFd2():
        warnings.simplefilter("ignore")
        yield
