"""Every flag of every subcommand takes effect or is refused (exit 2, one line naming it).

The test walks argparse's own parser, so a flag added later is checked without a new test: each
optional flag is given a value other than its default, on top of a base command for each kind of net
the subcommand takes; what the command would do (the runs it would write, the argv it hands on, what
it prints) must then differ from the base command's, or the command must refuse with exit 2 and one
line that names the flag.
"""

import argparse

import pytest

from fmsim import cli
from fmsim.commandline import cluster_argv

SAMPLE = {"int": "3", "float": "0.7", "int_list": "3,4", "float_list": "0.5,0.7", "str": "x"}
OVERRIDE = {  # values the generic samples would not make valid or different
    "nets": "3000", "chunk_size": "2048", "depths": "4,5", "schemes": "lecun", "modules": "3", "etas": "0.5,0.7",
    "module_widths": "3", "channels": "1,3,2", "spatial": "6", "kernel": "5", "widths": "4,5,6", "width": "6",
    "depth": "5", "n0": "7", "c": "1.5", "m0": "2.5", "group": "/other", "out": "elsewhere.h5", "workers": "2",
    "scheduler": "tls://10.0.0.5:8786", "dashboard": "127.0.0.1:8787", "tls_ca_file": "ca.pem",
    "tls_cert": "cert.pem", "tls_key": "key.pem", "eta": "0.5", "c_out": "1.0", "bias_var": "0.3", "seed": "9",
    "law": "orthogonal", "schedule": "1/l", "ending": "relu", "backend": "cuda", "method": "exact_first",
}


def _sample(action: argparse.Action) -> list[str]:
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        return [action.option_strings[-1]]
    if action.dest in OVERRIDE:
        value = OVERRIDE[action.dest]
    elif action.choices:
        value = next(str(c) for c in action.choices if c != action.default)
    else:
        kind = getattr(action.type, "__name__", "str")
        value = SAMPLE.get(kind, SAMPLE["str"])
    return [action.option_strings[-1], value]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _effect(monkeypatch, capsys, argv):
    """What ``fmsim argv`` would do, without doing it: the runs, file and options it would run (simulate,
    sweep), the argv it hands on (demo), what it fetches (data), or what it prints; or ("refused", line)."""
    seen = []

    def capture_run(runs, out, backend, args):
        seen.append(([(c.to_dict(), g) for c, g in runs], out, backend, args.quiet, cluster_argv(args)))

    monkeypatch.setattr(cli, "_run", capture_run)
    from fmsim.experiments import fig1a
    monkeypatch.setattr(fig1a, "main", lambda argv: seen.append(("demo", list(argv))))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    if code != 0:
        assert code == 2 and err.count("\n") == 1, (argv, code, err)
        return "refused", err
    return tuple(seen) or out


CASES = {  # subcommand -> base commands, one per kind of net it takes
    "simulate": [["--depth", "3", "--width", "4"], ["--modules", "2", "--width", "4"],
                 ["--channels", "1,2,2", "--spatial", "5"]],
    "sweep": [["--depths", "2,3"]],
    "law": [["--depth", "3", "--width", "4"], ["--modules", "2", "--width", "4"]],
    "demo": [[]],
}


@pytest.mark.parametrize("command", sorted(CASES))
def test_every_flag_takes_effect_or_is_refused(command, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    parser = _subparsers()[command]
    flags = [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
    assert flags, command
    for base in CASES[command]:
        needs_out = any(a.dest == "out" and a.required for a in flags)
        base = [command, *base, *(["--out", "run.h5"] if needs_out else []),
                *(["--nets", "2048"] if command in ("simulate", "sweep") else [])]
        before = _effect(monkeypatch, capsys, base)
        assert before[0] != "refused", (base, before)
        for action in flags:
            argv = base + _sample(action)
            after = _effect(monkeypatch, capsys, argv)
            if after[0] == "refused":
                name = action.option_strings[-1].lstrip("-")
                assert any(n in after[1] for n in (name, name.replace("-", "_"))), f"{argv}: {after[1]} names no flag"
                continue
            assert after != before, f"{' '.join(argv)}: the flag {action.option_strings[-1]} changed nothing"


def test_verify_group_and_info_take_their_file(tmp_path, capsys):
    import fmsim
    from fmsim.running.simulate import make_config

    path = tmp_path / "two.h5"
    for group in ("/a", "/b"):
        fmsim.run_to_file(make_config(fmsim.FullyConnected((3, 4)), fmsim.Init(), 1024, 1, chunk_size=1024), path,
                          group=group)
    assert cli.main(["verify", str(path)]) == 0
    both = capsys.readouterr().out
    assert cli.main(["verify", str(path), "--group", "/b"]) == 0
    one = capsys.readouterr().out
    assert both.count(": ok") == 2 and one.count(": ok") == 1 and "/b" in one
    assert cli.main(["verify", str(path), "--group", "/c"]) == 2
    assert "/c holds no fmsim run" in capsys.readouterr().err
