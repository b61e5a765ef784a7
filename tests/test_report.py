"""The quick report tells exactly the truth: its summary line counts the verdicts of report.md, it holds no
undecided claim (what its size cannot decide is left out and listed), its exit status follows the verdicts, and
each of its figures draws every curve over at least two points."""

import re

import pytest

from fmsim.experiments import fig1a, fig1b, fm2_profiles, hessian_init, report, resnet_scaling

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    curves = {}
    mp = pytest.MonkeyPatch()

    def recording(module):
        real = module.save

        def save(fig, png):
            for i, ax in enumerate(fig.axes):
                for handle, label in zip(*ax.get_legend_handles_labels()):  # each curve in a legend
                    line = handle.lines[0] if hasattr(handle, "lines") else handle  # (an errorbar: its data line)
                    if hasattr(line, "get_xdata"):
                        curves[(png.rsplit("/", 1)[-1], i, label)] = len(line.get_xdata())
            real(fig, png)
        return save

    for module in (fig1a, fig1b, fm2_profiles, hessian_init, resnet_scaling):
        mp.setattr(module, "save", recording(module))
    status = report.main(["--quick", "--quiet", "--out", str(out)])
    mp.undo()
    return out, status, curves


def _table_verdicts(text: str) -> list[str]:
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| paper")]
    return [row.rstrip(" |").rsplit("|", 1)[-1].strip() for row in rows]


def test_the_summary_line_counts_the_verdicts_of_report_md(quick):
    out, status, _ = quick
    text = (out / "report.md").read_text()
    verdicts = _table_verdicts(text)
    summary = re.search(r"\*\*(\d+) claims: (\d+) agree, (\d+) hold, (\d+) inconclusive, (\d+) disagree, (\d+) fail",
                        text)
    assert summary, text[:500]
    total, agree, hold, inconclusive, disagree, fail = map(int, summary.groups())
    assert total == len(verdicts)
    assert (agree, hold, disagree, fail) == tuple(verdicts.count(v) for v in ("agrees", "holds", "disagrees", "fails"))
    assert inconclusive == sum(v.startswith("inconclusive") for v in verdicts)
    assert status == report.exit_status([report.Claim("", "", "", "", "", None, v) for v in verdicts])


def test_the_quick_report_decides_every_claim_it_keeps_and_lists_the_rest(quick):
    out, status, _ = quick
    text = (out / "report.md").read_text()
    assert not [v for v in _table_verdicts(text) if v.startswith("inconclusive")]
    for claim, why in report.QUICK_LEFT_OUT:
        assert f"- {claim}: {why}." in text
    assert status == report.EXIT_CONFIRMED, text[:2000]


def test_every_quick_figure_draws_each_curve_over_two_points_or_more(quick):
    out, _, curves = quick
    figures = {png for png, _, _ in curves}
    assert figures >= {"fig1a_report.png", "fig1b.png", "fig1b_fm2.png", "fm2_profiles.png", "fm2_beta.png",
                       "resnet_scaling.png", "hessian_init.png"}, figures
    short = {key: n for key, n in curves.items() if n < 2}
    assert not short, short


def test_the_quick_report_names_its_claims_and_links_its_figures(quick):
    out, _, _ = quick
    text = (out / "report.md").read_text()
    assert text.count("| H&R 2018 |") >= 15 and text.count("| STT 2020 |") == 3
    for claim in ("orthogonal weights, gain sqrt 2, no widening layer", "gain 1: E[M_d] = 2^-d M_0",
                  "orthogonal FM2: Var[log M_d]", "orthogonal FM2: E[M_d^2]/M_0^2", "orthogonal FM1: gain sqrt 2 loses",
                  "- Fig. 1b: orthogonal weights with gain sqrt 2 start training no later than He: "):  # (left out)
        assert claim in text, claim
    for png in ("fig1a_report.png", "fig1b.png", "fm2_profiles.png", "fm2_beta.png", "resnet_scaling.png",
                "hessian_init.png"):
        assert f"]({png})" in text and (out / png).exists()
    # 'agrees' rows must really be within 5 s.e.
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 7 and cells[-2] == "agrees" and cells[-3]:
            assert abs(float(cells[-3])) <= 5


def test_exit_status_and_counts_follow_the_verdicts():
    claim = lambda v: report.Claim("p", "c", "x", "s", "e", None, v)  # noqa: E731
    assert report.exit_status([claim("agrees"), claim("holds")]) == 0
    assert report.exit_status([claim("agrees"), claim("inconclusive: a tie")]) == 3
    assert report.exit_status([claim("inconclusive: a tie"), claim("fails")]) == 1
    line = report.summary_line([claim("agrees"), claim("inconclusive: a tie")], [("left", "why")])
    assert line.startswith("2 claims: 1 agree, 0 hold, 1 inconclusive, 0 disagree, 0 fail; not confirmed: c "
                           "(inconclusive: a tie); 1 left out at this size: left")


def test_a_second_quick_report_reuses_the_stored_files(quick):
    # Last in this module: it rewrites report.md (new timings, the same table) in the fixture's folder.
    import h5py

    from fmsim import cli

    out, _, _ = quick
    text = (out / "report.md").read_text()
    with h5py.File(out / "fig1b.h5", "r") as f:
        seconds = f["fm1/he/depth_4/run_0"].attrs["seconds"]
    hess = (out / "hessian_init.h5").read_bytes()
    assert cli.main(["report", "--quick", "--quiet", "--out", str(out)]) == 0  # again: nothing recomputed
    with h5py.File(out / "fig1b.h5", "r") as f:
        assert f["fm1/he/depth_4/run_0"].attrs["seconds"] == seconds
    assert (out / "hessian_init.h5").read_bytes() == hess
    assert (out / "report.md").read_text().split("\n", 5)[5] == text.split("\n", 5)[5]  # same table, new timings
