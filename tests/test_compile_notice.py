"""The notice that names numba's compilations on a terminal (a first run waits tens of seconds for them)."""

import io
import sys

import numpy as np
from numba import njit

from fmsim.commandline import run_main
from fmsim.running.compile_notice import compile_notice


def _fresh():
    """A function numba has not compiled yet (no on-disk cache)."""

    @njit
    def summed(a):
        s = 0.0
        for v in a:
            s += v * v
        return s

    return summed


def test_a_compilation_is_named_with_its_duration_and_a_cached_call_says_nothing():
    f = _fresh()
    out = io.StringIO()
    with compile_notice(out, after=0.0):
        assert f(np.arange(3.0)) == 5.0
        f(np.arange(4.0))  # compiled already: no event
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("fmsim: compiling _fresh.<locals>.summed for this CPU, once")
    assert lines[1].startswith("fmsim: compiled _fresh.<locals>.summed in ") and lines[1].endswith(" s")


def test_short_compilations_stay_silent_and_the_listener_goes_away():
    out = io.StringIO()
    with compile_notice(out, after=60.0):
        _fresh()(np.arange(3.0))
    _fresh()(np.arange(3.0))  # outside the block: not listened to
    assert out.getvalue() == ""


class _Terminal(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_the_command_line_names_compilations_on_a_terminal_only(monkeypatch):
    import fmsim.running.compile_notice as notice

    monkeypatch.setattr(notice, "AFTER_SECONDS", 0.0)  # name every compilation
    for tty in (True, False):
        err = _Terminal(tty)
        monkeypatch.setattr(sys, "stderr", err)
        assert run_main(lambda _: _fresh()(np.arange(2.0))) == 0
        assert ("fmsim: compiling _fresh.<locals>.summed" in err.getvalue()) == tty, err.getvalue()
