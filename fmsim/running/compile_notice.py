"""Say on stderr when numba compiles a kernel, so that a first run's wait is visible.

numba compiles a kernel the first time a process calls it with new argument types, unless its on-disk cache
holds it (fmsim's kernels are cached: ``cache=True``). On a new install that first call can take tens of
seconds with nothing on the screen. :func:`compile_notice` listens to numba's ``numba:compile`` events, which
fire on real compilations only (a kernel loaded from the cache sends none): a compilation still running after
``after`` seconds is named, and its end is reported with its duration.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from numba.core import event

__all__ = ["CompileNotice", "compile_notice", "announce", "AFTER_SECONDS"]

#: Seconds a compilation runs before :func:`compile_notice` names it.
AFTER_SECONDS = 1.0


def _write(line: str, stream: TextIO) -> None:
    """One line on ``stream``, through tqdm where it is loaded (so that a progress bar is redrawn below it)."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None:
        tqdm.tqdm.write(line, file=stream)
    else:
        print(line, file=stream, flush=True)


class CompileNotice(event.Listener):
    """A numba event listener that names a compilation still running after ``after`` seconds.

    Parameters
    ----------
    stream : file
        Where the lines go (stderr).
    after : float
        Seconds a compilation runs before it is named (short ones stay silent).
    """

    def __init__(self, stream: TextIO, after: float = 1.0) -> None:
        self.stream = stream
        self.after = after
        self._depth = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._name = ""
        self._started = 0.0
        self._shown = False

    def _starting(self) -> str:
        return f"fmsim: compiling {self._name} for this CPU, once (numba caches it for later runs) ..."

    def _show(self) -> None:
        with self._lock:
            if self._depth > 0 and not self._shown:
                self._shown = True
                _write(self._starting(), self.stream)

    def on_start(self, ev: event.Event) -> None:
        with self._lock:
            self._depth += 1
            if self._depth > 1:  # the functions a kernel calls compile inside its own compilation
                return
            dispatcher = (ev.data or {}).get("dispatcher")
            self._name = getattr(getattr(dispatcher, "py_func", None), "__qualname__", "a kernel")
            self._started = time.perf_counter()
            self._shown = False
            if self.after <= 0.0:  # at once, from this thread
                self._shown = True
                _write(self._starting(), self.stream)
                return
            self._timer = threading.Timer(self.after, self._show)
            self._timer.daemon = True
            self._timer.start()

    def on_end(self, ev: event.Event) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth > 0:
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._shown:
                _write(f"fmsim: compiled {self._name} in {time.perf_counter() - self._started:.1f} s", self.stream)


_active: list[CompileNotice] = []  # the notices whose blocks are running, innermost last


@contextmanager
def compile_notice(stream: TextIO | None = None, after: float | None = None) -> Iterator[CompileNotice]:
    """Within the block, name on ``stream`` (default stderr) each numba compilation that runs longer than
    ``after`` seconds (default :data:`AFTER_SECONDS`), and its duration when it ends."""
    listener = CompileNotice(sys.stderr if stream is None else stream, AFTER_SECONDS if after is None else after)
    with event.install_listener("numba:compile", listener):
        _active.append(listener)
        try:
            yield listener
        finally:
            _active.remove(listener)


def announce(line: str) -> None:
    """Write ``line`` where compilations are being named (inside a :func:`compile_notice` block), else nowhere:
    for waits on compilations that run elsewhere (:mod:`fmsim.running.compile_ahead`)."""
    if _active:
        _write(line, _active[-1].stream)
