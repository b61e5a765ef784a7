"""``fmsim report``: run (or reuse) every experiment and write ``report.md``, one row per checkable claim.

Claims of Hanin & Rolnick (2018), of Skorski, Temperoni & Theobald
(2020) and of Hanin (2018) on gradients, each with its configuration, the simulated value +- its standard
error (from the sample), the exact value or bound, the z-score and a
verdict: "agrees" when |z| <= 5 (about 5 standard errors, as the tests),
"holds"/"fails" for bounds and orderings. The figures are embedded.

Every experiment is resumable, so a second run reads the stored HDF5 and
only redraws (the Hessian experiment reuses its file when the stored
configuration matches). ``--quick`` runs tiny versions into ``data/quick``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..commandline import add_cluster_options, cluster_argv, cluster_from_args
from ..presenting.display import format_from_log

Z_MAX = 5.0
#: Verdicts that confirm a claim, and that refute it; any other (it starts with "inconclusive") leaves it open.
CONFIRMED = ("agrees", "holds")
REFUTED = ("disagrees", "fails")
#: ``fmsim report``'s exit status: every claim confirmed; a claim refuted; none refuted, one or more open.
EXIT_CONFIRMED, EXIT_REFUTED, EXIT_INCONCLUSIVE = 0, 1, 3
FIG1A_SCHEMES = ["he", "he_uniform", "he_truncated_keras2018", "lecun", "glorot", "pytorch_default",
                 "pytorch_default_weights", "2x_he", "orthogonal", "orthogonal_unit"]
FIG1A_DEPTHS = [5, 10, 20, 30, 50, 75, 100]
FM1_CLAIMS = {
    "he": "Var(W) = 2/fan-in keeps the mean length: E[M_d] = M_0 (no FM1)",
    "he_uniform": "FM1 depends on Var(W) only: He uniform also keeps E[M_d] = M_0",
    "he_truncated_keras2018": "an unrescaled truncated normal shrinks E[M_d] by 0.7737^d (FM1)",
    "lecun": "Var(W) = 1/fan-in: E[M_d] = 2^-d M_0 vanishes (FM1)",
    "glorot": "Glorot (width = depth, so Var = 1/fan-in past layer 1): E[M_d] vanishes (FM1)",
    "pytorch_default": "PyTorch's default as nn.Linear builds it (weights and biases U(+-1/sqrt(fan-in))): the "
                       "biases hold E[M_d] at their fixed point, 1/(5 width), where the weights alone vanish",
    "pytorch_default_weights": "PyTorch's default weights alone, Var(W) = 1/(3 fan-in): E[M_d] = 6^-d M_0 "
                               "vanishes (FM1)",
    "2x_he": "Var(W) = 4/fan-in: E[M_d] = 2^d M_0 explodes (FM1)",
    "orthogonal": "orthogonal weights, gain sqrt 2, no widening layer: E[M_d] = M_0 (no FM1)",
    "orthogonal_unit": "orthogonal weights with PyTorch's default gain 1: E[M_d] = 2^-d M_0 vanishes (FM1)",
}


@dataclass(frozen=True)
class Claim:
    """One row of the report."""

    paper: str
    claim: str
    config: str
    simulated: str
    exact: str
    z: float | None
    verdict: str


def _z_verdict(sim: float, se: float, exact: float) -> tuple[float | None, str]:
    if not (se > 0 and math.isfinite(se)):
        return None, "agrees" if sim == exact else "disagrees"
    z = (sim - exact) / se
    return z, "agrees" if abs(z) <= Z_MAX else "disagrees"


def _fmt(v: float, se: float | None = None) -> str:
    return f"{v:.4g}" if se is None else f"{v:.4g} +- {se:.2g}"


# ----------------------------------------------------------------------------- claims
def fm1_claims(path: str, depths: Sequence[int]) -> list[Claim]:
    from ..files.store import open_result
    from . import fig1a

    table = fig1a.summarize(path, depths, FIG1A_SCHEMES)
    d = depths[-1]
    rows = []
    for s in FIG1A_SCHEMES:
        t = table[s]
        log_mean, log_se, log_exact = t["log_mean"][-1], t["log_sem"][-1], t["log_theory"][-1]
        # z from the ratios to the exact value: the same number as (mean - exact) / se, at any depth
        z, verdict = _z_verdict(math.expm1(log_mean - log_exact), math.exp(log_se - log_exact), 0.0)
        n = open_result(path, f"{s}/depth_{d}").config.n_nets
        rows.append(Claim("H&R 2018", FM1_CLAIMS[s], f"{s}, depth = width = {d}, {n} nets",
                          f"{format_from_log(log_mean, 4)} +- {format_from_log(log_se, 2)}",
                          format_from_log(log_exact, 4), z, verdict))
    # the whole law, not only the mean: the He median against the exact law of M_d
    from .. import theory

    res = open_result(path, f"he/depth_{d}")
    law = theory.length_law(res.config.arch.widths, res.config.init.layer_c(res.config.arch), m0=res.m0)
    alive = res.final[res.final > 0]
    med = float(np.median(alive))
    exact_med = float(np.exp(law.log_quantile([0.5])[0]))
    density = float(law.pdf(np.array([exact_med]))[0]) / (1 - law.p_dead)
    se = math.sqrt(0.25 / alive.size) / density  # s.e. of a sample median
    z, verdict = _z_verdict(med, se, exact_med)
    rows.append(Claim("fmsim", "the median of M_d follows the exact law (chi-square-binomial product)",
                      f"he, depth = width = {d}, {res.config.n_nets} nets", _fmt(med, se), _fmt(exact_med), z,
                      verdict))
    return rows


def _var_log_claim(table: dict, beta: float, paper: str, claim: str, init: str) -> Claim:
    """One claim of :func:`fm2_profiles.summarize`'s ``table`` at ``beta``: Var[log M_d] at the largest depth of
    every width profile against its exact value, with the worst z (``init`` names the weights)."""
    ts = [t for (bb, _), t in table.items() if bb == beta]
    d = int(ts[0]["depth"][-1])
    sims = np.array([t["var_log"][-1] for t in ts])
    ses = np.array([t["var_log_se"][-1] for t in ts])
    exact = np.array([t["var_log_exact"][-1] for t in ts])
    zs = (sims - exact) / ses
    worst = int(np.argmax(np.abs(zs)))
    return Claim(paper, claim, f"{init}, depth {d}, {len(ts)} width profiles",
                 f"{sims.min():.4g} to {sims.max():.4g} (s.e. {ses.max():.2g})",
                 f"{exact.min():.4g} to {exact.max():.4g}", float(zs[worst]),
                 "agrees" if np.all(np.abs(zs) <= Z_MAX) else "disagrees")


def fm2_claims(path: str, depths: Sequence[int], betas: Sequence[float]) -> list[Claim]:
    from .. import theory
    from . import fm2_profiles

    table = fm2_profiles.summarize(path, depths, betas)
    rows = [_var_log_claim(table, b, "H&R 2018",
                           f"FM2: the spread of log M_d is set by beta = sum 1/n_j = {b:g}, not by the width profile",
                           "He") for b in betas]
    rows += orthogonal_fm2_claims(path, depths, betas)
    for b in betas:  # the exponential growth in beta (exact; the sample moment is too heavy-tailed to test)
        n = max(1, round(max(depths) / b))
        widths = [n] * (max(depths) + 1)
        second = theory.gaussian_moments(widths, 2)[-1]
        beta = sum(1.0 / w for w in widths[1:])
        bound = math.exp(5 * beta)
        rows.append(Claim("H&R 2018", "FM2: E[M_d^2]/M_0^2 grows exponentially in beta, below exp(5 beta)",
                          f"He, constant width {n}, depth {max(depths)} (beta = {beta:.3g})", "(exact law)",
                          f"{second:.4g} <= {bound:.4g}", None, "holds" if second <= bound else "fails"))
    return rows


def orthogonal_fm2_claims(path: str, depths: Sequence[int], betas: Sequence[float]) -> list[Claim]:
    """Orthogonal weights beside He on fm2_profiles' nets: the spread of log M_d against its exact value per
    profile, the second moment against ``prod (1 + 3/(n_j + 2))``, and the length a widening net loses."""
    from .. import theory
    from ..files.store import open_result
    from . import fm2_profiles

    table = fm2_profiles.summarize(path, depths, betas, "orthogonal")
    rows = [_var_log_claim(table, b, "fmsim", "orthogonal FM2: Var[log M_d] follows its exact law on every width "
                           f"profile at beta = {b:g} (it depends on the profile, unlike He's)",
                           "orthogonal, gain sqrt 2") for b in betas]
    b, d = min(betas), max(depths)
    res = open_result(path, fm2_profiles.group("orthogonal", b, "constant", d))
    w = res.config.arch.widths
    m2 = (res.final / res.m0) ** 2
    exact = float(theory.orthogonal_moments(w, 2)[-1])
    he = float(theory.gaussian_moments(w, 2)[-1])
    z, verdict = _z_verdict(float(m2.mean()), float(m2.std(ddof=1) / math.sqrt(m2.size)), exact)
    rows.append(Claim("fmsim", "orthogonal FM2: E[M_d^2]/M_0^2 = prod (1 + 3/(n_j + 2)), below He's prod (1 + 5/n_j)",
                      f"orthogonal, 784 -> {w[1]} x {len(w) - 1}, {res.config.n_nets} nets",
                      _fmt(float(m2.mean()), float(m2.std(ddof=1) / math.sqrt(m2.size))),
                      f"{exact:.4g} (He: {he:.4g})", z, verdict))
    res = open_result(path, fm2_profiles.group("orthogonal", b, "increasing", d))
    w = res.config.arch.widths
    ratio = res.final / res.m0
    exact = float(theory.mean_length(w, 2.0, weights="orthogonal")[-1])
    se = float(ratio.std(ddof=1) / math.sqrt(ratio.size))
    z, verdict = _z_verdict(float(ratio.mean()), se, exact)
    rows.append(Claim("fmsim", "orthogonal FM1: gain sqrt 2 loses length at every widening layer, "
                               "E[M_d]/M_0 = prod min(n_{j-1}, n_j)/n_j (He keeps 1)",
                      f"orthogonal, widths 784 -> {w[1]} ... {w[-1]} (widening), {res.config.n_nets} nets",
                      _fmt(float(ratio.mean()), se), f"{exact:.4g}", z, verdict))
    return rows


def resnet_claims(path: str, width: int, depths: Sequence[int]) -> list[Claim]:
    from ..files.store import open_result
    from . import resnet_scaling

    table = resnet_scaling.summarize(path, width, depths)
    L = depths[-1]
    rows = []
    text = {"1/l": "eta_l = 1/l (sum eta^2 finite): E[M_L] stays bounded (no FM1)",
            "1/sqrt(L)": "eta_l = 1/sqrt(L): E[M_L] stays bounded (tends to e^2)",
            "constant": "eta = 1: E[M_L] explodes as 3^L (FM1)"}
    for s in ("1/l", "1/sqrt(L)", "constant"):
        _, mean, se, rel, tmean, trel = (c[-1] for c in table[("linear", s)])
        z, verdict = _z_verdict(mean, se, tmean)
        rows.append(Claim("H&R 2018", f"ResNet, linear-ending modules, {text[s]}",
                          f"width {width}, L = {L}, He", _fmt(mean, se), _fmt(tmean), z, verdict))
    _, mean, se, rel, tmean, trel = (c[-1] for c in table[("linear", "1/l")])
    m = open_result(path, resnet_scaling.group_name("linear", "1/l", L)).final
    batches = [b.var(ddof=1) / b.mean() ** 2 for b in np.array_split(m, 20)]  # batch means give its s.e.
    se_rel = float(np.std(batches, ddof=1) / math.sqrt(len(batches)))
    z, verdict = _z_verdict(rel, se_rel, trel)
    rows.append(Claim("H&R 2018", "ResNet: no FM2 once FM1 is avoided (Var[M_L]/E[M_L]^2 stays bounded: exact value)",
                      f"width {width}, L = {L}, eta = 1/l", _fmt(rel, se_rel), _fmt(trel), z, verdict))
    for s in ("1/l", "1/sqrt(L)"):  # ReLU-ending: between prod (1 + eta^2) and prod (1 + eta)^2
        res = open_result(path, resnet_scaling.group_name("relu", s, L))
        etas = np.asarray(res.config.arch.etas)
        lo, hi = float(np.prod(1 + etas**2)), float(np.prod((1 + etas) ** 2))
        _, mean, se, *_ = (c[-1] for c in table[("relu", s)])
        ok = lo - Z_MAX * se <= mean <= hi + Z_MAX * se
        rows.append(Claim("H&R 2018", f"ResNet, ReLU-ending modules, eta = {s}: growth set by sum eta (first order)",
                          f"width {width}, L = {L}, {res.config.n_nets} nets", _fmt(mean, se),
                          f"in [{lo:.4g}, {hi:.4g}]", None, "holds" if ok else "fails"))
    return rows


#: Claims the quick report leaves out, and why: at its size they are not decided either way.
QUICK_LEFT_OUT = (
    ("Fig. 1b: orthogonal weights with gain sqrt 2 start training no later than He",
     "at depth 12 with 2 runs the difference is within its noise; the full report decides it (depth 40, 5 runs)"),
    ("Fig. 1b: 2x He does not start training in deep nets",
     "at depth 12, 2^12 is not yet large enough to stop training; the full report decides it at depth 40"),
)


def fig1b_claims(path: str, depths: Sequence[int], runs: int, cap: int, quick: bool = False) -> list[Claim]:
    """Fig. 1b's orderings at the deepest depth; ``quick`` leaves out :data:`QUICK_LEFT_OUT`."""
    from . import fig1b

    d = depths[-1]
    on = {s: fig1b.onsets(path, f"fm1/{s}", [d], runs)[0] for s in fig1b.SCHEMES}
    filled = {s: np.where(np.isnan(v), cap, v) for s, v in on.items()}  # a run that never starts counts as the cap
    stats = {s: (v.mean(), v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else np.nan) for s, v in filled.items()}
    rows = []
    for other in ("lecun", "glorot"):
        (mh, sh), (mo, so) = stats["he"], stats[other]
        se = math.hypot(sh, so)
        z = (mo - mh) / se if se > 0 else None
        verdict = "holds" if mh < mo else (f"inconclusive: a tie, He and {fig1b.LABELS[other]} both {mh:.3g} epochs "
                                           f"(every run at the {cap}-epoch cap?)" if mh == mo else "fails")
        rows.append(Claim("H&R 2018", f"Fig. 1b: He starts training sooner than {fig1b.LABELS[other]} in deep nets",
                          f"depth = width = {d}, {runs} runs, at most {cap} epochs (never = {cap})",
                          f"He {_fmt(mh, sh)}, {fig1b.LABELS[other]} {_fmt(mo, so)} epochs", "He < other", z,
                          verdict))
    if quick:
        return rows
    (mh, sh), (mo, so) = stats["he"], stats["orthogonal"]
    se = math.hypot(sh, so)
    z = (mo - mh) / se if se > 0 else None
    slack = Z_MAX * se if math.isfinite(se) else 0.0  # no later than He, within 5 s.e. of the difference
    rows.append(Claim("fmsim", "Fig. 1b: orthogonal weights with gain sqrt 2 (E[M_d] = M_0 here, no FM1) start "
                               "training no later than He",
                      f"depth = width = {d}, {runs} runs, at most {cap} epochs (never = {cap})",
                      f"orthogonal {_fmt(mo, so)}, He {_fmt(mh, sh)} epochs", "orthogonal <= He", z,
                      "holds" if mo <= mh + slack else "fails"))
    never = int(np.isnan(on["2x_he"]).sum())
    rows.append(Claim("H&R 2018", "Fig. 1b: 2x He (exploding mean length) does not start training in deep nets",
                      f"depth = width = {d}, {runs} runs", f"{never} of {runs} never started",
                      f"all {runs}", None, "holds" if never == runs else "fails"))
    return rows


def hessian_claims(path: str) -> list[Claim]:
    from . import hessian_init

    norms, depths, width, _, meta = hessian_init.read(path)
    rows = []
    for c, (slope, se) in zip(hessian_init.C_VALUES, hessian_init.slopes_with_se(norms, depths)):
        exact = math.log(c / 2)
        z, verdict = _z_verdict(slope, se, exact)
        what = ("the Hessian-norm rule (c = 2, He) keeps the first layer's Hessian block flat in depth" if c == 2
                else f"c = {c:g}: log |H_W1| changes by log(c/2) per layer")
        rows.append(Claim("STT 2020", what, f"width {width}, depths {depths[0]}..{depths[-1]}, {norms.shape[2]} nets",
                          _fmt(slope, se), f"{exact:+.4g}", z, verdict))
    return rows


def gram_claims(path: str) -> list[Claim]:
    """Hanin (2018) and the Gram chain: the mean and the fluctuations of a Jacobian entry, the cosine of two
    inputs against the arc-cosine map, and the exact chain against ``full`` nets."""
    import argparse

    from scipy import stats

    from ..theory.gram import mean_field_cosine
    from . import gram_chain as g

    samples, meta = g.read(path)
    a = argparse.Namespace(**meta)
    rows = []
    for d in a.depths:
        m, se = g.mean_se(samples[f"entry_depth_{d}"] * g.N0)
        z, verdict = _z_verdict(m, se, 1.0)
        rows.append(Claim("Hanin 2018", "He weights: the mean squared Jacobian entry n_0 E[(J e_p)_q^2] is 1 at "
                                        "every depth (no exploding or vanishing gradient on average)",
                          f"n_0 = {g.N0}, width {a.width}, depth {d}, {a.nets} nets", _fmt(m, se), "1", z, verdict))
    c, se, exact, *_ = g.fluctuation_fit(samples, a.profile_widths, a.profile_depth)
    z, verdict = _z_verdict(c, se, exact)
    betas = [g.beta(w, a.profile_depth) for w in a.profile_widths]
    rows.append(Claim("Hanin 2018", "the fluctuations of the squared Jacobian entries grow like exp(C beta): the "
                                    "fitted C of log(E[X^2]/E[X]^2) against beta (exact: the closed form's slope, 5 "
                                    "at large width)",
                      f"depth {a.profile_depth}, beta {min(betas):.3g} to {max(betas):.3g}, {a.nets} nets each",
                      _fmt(c, se), _fmt(exact), z, verdict))
    layers = np.arange(a.cos_depth + 1)
    mf = mean_field_cosine(a.cos_depth, a.rho0)
    narrow, wide = min(a.cos_widths), max(a.cos_widths)
    for w in (wide, narrow):
        cos = samples[f"cosine_width_{w}"]
        dev = [g.mean_se(cos[:, j]) for j in layers[1:]]
        bound = a.cos_depth / w
        delta = np.array([m for m, _ in dev]) - mf[1:]
        z_max = max(abs(dl) / s for dl, (_, s) in zip(delta, dev) if s > 0)
        worst = int(np.argmax(np.abs(delta)))
        sim = (f"largest |mean - map| {abs(delta[worst]):.2g} +- {dev[worst][1]:.1g} (layer {worst + 1}), "
               f"max |z| {z_max:.1f}")
        if w == wide:
            ok = np.all(np.abs(delta) <= bound + Z_MAX * np.array([s for _, s in dev]))
            rows.append(Claim("mean field", "at large width the mean cosine of two inputs follows the arc-cosine map, "
                                            "within O(d/n)", f"width {w}, depth {a.cos_depth}, cosine {a.rho0:g}",
                              sim, f"|mean - map| <= d/n = {bound:.2g}", None, "holds" if ok else "fails"))
        else:
            verdict = ("fails" if np.any(np.abs(delta) > bound) else "holds" if z_max > Z_MAX else
                       f"inconclusive: the deviation is within {Z_MAX:g} s.e. at {cos.shape[0]} nets")
            rows.append(Claim("fmsim", "at small width the mean cosine leaves the arc-cosine map, by less than d/n "
                                       "(a finite-width effect the exact chain resolves)",
                              f"width {w}, depth {a.cos_depth}, {cos.shape[0]} nets", sim,
                              f"|z| > {Z_MAX:g} somewhere, |mean - map| <= {bound:.2g}", None, verdict))
    exact_last = samples[f"cosine_width_{narrow}"][:, -1]
    full_last = samples["cosine_full_last"]
    p_value = stats.ks_2samp(exact_last[np.isfinite(exact_last)], full_last[np.isfinite(full_last)]).pvalue
    rows.append(Claim("fmsim", "the exact Gram chain has the law of full nets: the cosine at the last layer (no closed "
                               "form), two-sample KS", f"width {narrow}, depth {a.cos_depth}, {full_last.size} full "
                                                       f"and {exact_last.size} exact nets",
                      f"p = {p_value:.3g}", "p > 0.001", None, "agrees" if p_value > 1e-3 else "disagrees"))
    return rows


# ----------------------------------------------------------------------------- running
#: The file each experiment writes in the report's folder.
EXPERIMENT_FILES = ("fig1a_report.h5", "fig1b.h5", "fm2_profiles.h5", "resnet_scaling.h5", "hessian_init.h5",
                    "gram_chain.h5")


def preflight(out: str) -> None:
    """Every input of every experiment, checked before the first one starts.

    MNIST (Fig. 1b and the Hessian experiment train on it): each file is present with its checksum, or
    is downloaded now; offline and without it, the report stops here, not after Fig. 1a. Each
    experiment's file, where it exists: an fmsim file that no other process is writing, and not damaged
    (the experiments check their own configurations again as they start).

    Raises
    ------
    fmsim.datasets.DataUnavailableError, StoreError
        One line each, before any work.
    """
    from ..files.datasets import fetch_mnist_file, mnist_status
    from ..files.rewrite import check_writable

    for status in mnist_status():
        if status.state != "ok":
            fetch_mnist_file(status.name)
    for name in EXPERIMENT_FILES:
        check_writable(os.path.join(out, name))


def _run(name: str, main, argv: list[str], quiet: bool) -> float:
    t = time.perf_counter()
    if not quiet:
        print(f"== {name} {' '.join(argv)}", flush=True)
    main(argv)
    return time.perf_counter() - t


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def verdict_counts(claims: Sequence[Claim]) -> dict[str, int]:
    """How many claims agree, hold, are inconclusive, disagree and fail (every verdict falls in one)."""
    counts = dict.fromkeys(("agrees", "holds", "inconclusive", "disagrees", "fails"), 0)
    for c in claims:
        counts[c.verdict if c.verdict in counts else "inconclusive"] += 1
    return counts


def summary_line(claims: Sequence[Claim], left_out: Sequence[tuple[str, str]] = ()) -> str:
    """``"31 claims: 23 agree, 6 hold, 2 inconclusive, 0 disagree, 0 fail"``, then each claim not confirmed with
    its verdict, and the claims left out: the line the report prints and the one ``report.md`` opens with."""
    n = verdict_counts(claims)
    line = (f"{len(claims)} claims: {n['agrees']} agree, {n['holds']} hold, {n['inconclusive']} inconclusive, "
            f"{n['disagrees']} disagree, {n['fails']} fail")
    open_ = [c for c in claims if c.verdict not in CONFIRMED]
    if open_:
        line += "; not confirmed: " + "; ".join(f"{c.claim} ({c.verdict})" for c in open_)
    if left_out:
        line += f"; {len(left_out)} left out at this size: " + "; ".join(claim for claim, _ in left_out)
    return line


def exit_status(claims: Sequence[Claim]) -> int:
    """:data:`EXIT_REFUTED` if a claim disagrees or fails, else :data:`EXIT_INCONCLUSIVE` if one is open, else
    :data:`EXIT_CONFIRMED`."""
    n = verdict_counts(claims)
    if n["disagrees"] or n["fails"]:
        return EXIT_REFUTED
    return EXIT_INCONCLUSIVE if n["inconclusive"] else EXIT_CONFIRMED


def write_markdown(path: str, claims: list[Claim], figures: list[tuple[str, str]], timings: dict[str, float],
                   quick: bool, left_out: Sequence[tuple[str, str]] = ()) -> None:
    from .. import __version__

    lines = [f"# fmsim report{' (quick)' if quick else ''}", "",
             f"**{summary_line(claims, left_out)}**", "",
             f"fmsim {__version__}; {_cpu()}, {os.cpu_count()} cores; "
             + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()), "",
             "Verdicts: *agrees* = |z| <= 5 (z = (simulated - exact) / s.e., s.e. from the sample); "
             "*holds* / *fails* for bounds and orderings; *inconclusive* when the data cannot tell (the reason is "
             "given). H&R 2018 = Hanin & Rolnick, *How to Start Training*; "
             "STT 2020 = Skorski, Temperoni & Theobald, *Revisiting Initialization of Neural Networks*.", "",
             "| paper | claim | configuration | simulated | exact or bound | z | verdict |",
             "|---|---|---|---|---|---|---|"]
    for c in claims:
        z = "" if c.z is None else f"{c.z:+.2f}"
        lines.append(f"| {c.paper} | {c.claim} | {c.config} | {c.simulated} | {c.exact} | {z} | {c.verdict} |")
    lines.append("")
    if left_out:
        lines += ["Left out of this quick report, because at its size the data cannot decide them:", ""]
        lines += [f"- {claim}: {why}." for claim, why in left_out]
        lines.append("")
    for title, png in figures:
        lines += [f"## {title}", "", f"![{title}]({png})", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the report; returns its exit status: 0 every claim agrees or holds, 1 one disagrees or fails, 3 none
    refuted and one or more inconclusive (:func:`exit_status`)."""
    from . import fig1a, fig1b, fm2_profiles, gram_chain, hessian_init, resnet_scaling

    p = argparse.ArgumentParser(prog="fmsim report", description=__doc__.splitlines()[0],
                                epilog="exit status: 0 every claim agrees or holds; 1 a claim disagrees or fails; "
                                       "3 none fails and one or more is inconclusive; 2 bad input or an unusable "
                                       "file")
    p.add_argument("--out", help="folder of the experiments' files and report.md (default data/, "
                                 "with --quick data/quick/)")
    p.add_argument("--quick", action="store_true", help="small versions of every experiment, each claim decided or "
                                                        "left out (and listed) at that size")
    p.add_argument("--quiet", action="store_true")
    add_cluster_options(p)
    a = p.parse_args(argv)
    out = a.out or (os.path.join("data", "quick") if a.quick else "data")
    os.makedirs(out, exist_ok=True)
    q = ["--quick"] if a.quick else []
    quiet = ["--quiet"] if a.quiet else []
    preflight(out)  # data and files: refused now, not after minutes of the first experiments
    fig1a_depths = [2, 4, 6] if a.quick else FIG1A_DEPTHS
    fig1a_args = ["--out", out, "--name", "fig1a_report", "--schemes", ",".join(FIG1A_SCHEMES), *q, *quiet]
    if not a.quick:
        fig1a_args += ["--depths", ",".join(map(str, FIG1A_DEPTHS)), "--nets", "100000", "--full-nets", "10000"]
    with cluster_from_args(a, a.quiet) as client:
        # one cluster for every experiment: each joins it by address (with the same certificates)
        dask = [] if client is None else cluster_argv(a, scheduler=client.scheduler.address)
        timings = {
            "fig1a": _run("fig1a", fig1a.main, [*fig1a_args, *dask], a.quiet),
            "fig1b": _run("fig1b", fig1b.main, ["--out", out, *q, *quiet, *dask], a.quiet),
            "fm2_profiles": _run("fm2_profiles", fm2_profiles.main, ["--out", out, *q, *quiet, *dask], a.quiet),
            "resnet_scaling": _run("resnet_scaling", resnet_scaling.main, ["--out", out, *q, *quiet, *dask],
                                   a.quiet),
            "hessian_init": _run("hessian_init", hessian_init.main, ["--out", out, *q], a.quiet),
            "gram_chain": _run("gram_chain", gram_chain.main, ["--out", out, *q], a.quiet),
        }
    fm2_depths, betas = ([4, 8], [0.5, 1.0]) if a.quick else (fm2_profiles.DEPTHS, fm2_profiles.BETAS)
    res_width, res_depths = (8, [1, 2, 4]) if a.quick else (32, resnet_scaling.DEPTHS)
    b_depths, runs, cap = ([4, 12], 2, 3) if a.quick else (fig1b.DEPTHS, 5, 100)
    claims = (fm1_claims(os.path.join(out, "fig1a_report.h5"), fig1a_depths)
              + fm2_claims(os.path.join(out, "fm2_profiles.h5"), fm2_depths, betas)
              + resnet_claims(os.path.join(out, "resnet_scaling.h5"), res_width, res_depths)
              + fig1b_claims(os.path.join(out, "fig1b.h5"), b_depths, runs, cap, quick=a.quick)
              + hessian_claims(os.path.join(out, "hessian_init.h5"))
              + gram_claims(os.path.join(out, "gram_chain.h5")))
    figures = [("Fig. 1a: mean length vs depth (FM1), with exact quantile bands", "fig1a_report.png"),
               ("Fig. 1b: epochs until training starts", "fig1b.png"),
               ("Fig. 1b, FM2 variant: width profiles of equal beta", "fig1b_fm2.png"),
               ("FM2: width profiles of equal beta (He and orthogonal)", "fm2_profiles.png"),
               ("FM2: spread of log M_d against beta, He vs orthogonal", "fm2_beta.png"),
               ("ResNets: eta schedules", "resnet_scaling.png"),
               ("Hessian norm at initialization", "hessian_init.png"),
               ("Gradients and pairs of inputs: Jacobian entries and the cosine of two inputs", "gram_chain.png")]
    report = os.path.join(out, "report.md")
    left_out = QUICK_LEFT_OUT if a.quick else ()
    write_markdown(report, claims, figures, timings, a.quick, left_out)
    print(f"wrote {report}: {summary_line(claims, left_out)}")
    return exit_status(claims)
