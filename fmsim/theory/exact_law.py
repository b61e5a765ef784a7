"""The exact law of the output length ``M_d``, computed without Monte Carlo.

Fully connected nets (Gaussian weights, no bias, ReLU at every layer, fixed
input with ``M_0 = ||x||^2 / n_0``): given the previous layer the
pre-activations of layer ``j`` are i.i.d. ``N(0, c_j M_{j-1})``, so

    M_j / M_{j-1} = (c_j / n_j) chi2(K_j),    K_j ~ Bin(n_j, 1/2),

independently across layers. ``K_j = 0`` kills the net (an atom at
``M_d = 0`` of mass ``1 - prod_j (1 - 2^{-n_j})``); given that the net is
alive, the ``K_j`` are independent ``Bin(n_j, 1/2)`` conditioned on
``K_j >= 1``, and ``L = log M_d`` is a sum of independent terms whose
characteristic functions are known in closed form:

    E[chi2_k^{it}] = 2^{it} Gamma(k/2 + it) / Gamma(k/2).

Linear-ending residual nets whose modules have no hidden layer (Gaussian,
no bias) have the same structure. With ``a^2 = eta^2 c_out M`` the
module's output ``W y`` is ``N(0, a^2 I_n)`` given ``y``; splitting it along
``y`` and its complement,

    n M' = (sqrt(n M) + a g)^2 + a^2 chi2_{n-1}
         = a^2 chi'2_n(lambda),    lambda = n M / a^2 = n / (eta^2 c_out),

a noncentral chi-square whose scale and noncentrality do not depend on
``M``. So ``M_l / M_{l-1} = (eta_l^2 c_out / n) chi'2_n(n / (eta_l^2 c_out))``,
independent across modules, and ``chi'2_n(lambda)`` is the Poisson mixture
``chi2_{n + 2J}``, ``J ~ Poisson(lambda/2)``. With hidden layers the module
ratio is ``T = (eta^2 c_out Q / n) chi'2_n(n / (eta^2 c_out Q))`` with
``Q`` itself a product of chi-square-binomial ratios: the noncentrality
then depends on the continuous ``Q``, the Mellin transform no longer
factorizes into finite sums, and each value of the characteristic function
would need an ``m``-dimensional integral; that case is left to the exact
O(1)-per-module sampler (``method="exact"``).

The CDF is inverted from the characteristic function by the Gil-Pelaez
formula discretized at midpoints ``t_k = (k + 1/2) h``:

    F(x) = 1/2 - (1/pi) sum_k Im[phi(t_k) e^{-i t_k x}] / (k + 1/2),

whose error is the mass of ``L`` farther than ``2 pi / h`` from ``x``
(bounded here by Chernoff bounds from the exact moments, kept below
1e-16) plus the tail of ``|phi|`` beyond the last ``t_k`` (summed until
negligible). Each value comes with an a-posteriori error estimate: the
difference from the same sum at half the step.

SciPy is imported inside the functions that use it, and never ``scipy.stats``:
importing it alone costs about a second (the pmfs above come from ``gammaln``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LengthLaw", "length_law", "residual_length_law", "ChiSquareBinomialFactor", "NoncentralFactor",
           "OrthogonalFactor"]

_PMF_CUT = 1e-22  # binomial / Poisson terms below this are dropped (their total is < 1e-18)
_TAIL = 1e-17  # mass left outside the inversion window, and |phi| at the last frequency


def _log_chi2_mixture_mean_var(dof: np.ndarray, weights: np.ndarray, log_scale: float) -> tuple[float, float]:
    """Mean and variance of ``log_scale + log chi2_k`` with ``k`` drawn from ``weights`` over ``dof``."""
    from scipy import special
    mu = special.digamma(dof / 2) + math.log(2.0)
    mean = float(weights @ mu)
    return log_scale + mean, float(weights @ special.polygamma(1, dof / 2) + weights @ (mu - mean) ** 2)


@dataclass(frozen=True)
class ChiSquareBinomialFactor:
    """One fully connected layer: ``Y = (c/n) chi2(K)``, ``K ~ Bin(n, 1/2)``; ``K = 0`` is death."""

    n: int
    c: float

    def _terms(self) -> tuple[np.ndarray, np.ndarray]:
        """``K >= 1`` with non-negligible mass and their probabilities given ``K >= 1``."""
        from scipy import special

        k = np.arange(1, self.n + 1)
        p = np.exp(special.gammaln(self.n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(self.n - k + 1.0)
                   - self.n * math.log(2.0))  # Bin(n, 1/2) pmf
        keep = p >= _PMF_CUT * p.max()
        return k[keep].astype(float), p[keep] / p[keep].sum()

    @property
    def p_atom(self) -> float:
        return 2.0 ** (-self.n)

    @property
    def log_scale(self) -> float:
        return math.log(self.c / self.n)

    def log_cf_alive(self, t: np.ndarray) -> np.ndarray:
        """``log E[Y^{it} | K >= 1]``, shape of ``t``."""
        k, p = self._terms()
        from scipy import special
        z = special.loggamma(k[None, :] / 2 + 1j * t[:, None]) - special.gammaln(k / 2)[None, :]
        mix = np.exp(z) @ p
        return 1j * t * (self.log_scale + math.log(2.0)) + np.log(mix)

    def log_mean_var(self) -> tuple[float, float]:
        """Mean and variance of ``log Y`` given ``K >= 1`` (``log chi2_k``: ``psi(k/2) + log 2``, ``psi'(k/2)``)."""
        return _log_chi2_mixture_mean_var(*self._terms(), self.log_scale)

    def log_moment_alive(self, p: float, truncated: bool = False) -> float:
        """``log E[Y^p | K >= 1]``; ``inf`` where infinite (``p <= -1/2``).

        ``truncated``: of the law without its negligible terms (finite for
        ``p > -K_min/2``), for inversion windows only.
        """
        k, w = self._terms()
        if p <= (-0.5 * k.min() if truncated else -0.5):
            return math.inf
        from scipy import special
        terms = special.gammaln(k / 2 + p) - special.gammaln(k / 2)
        return p * (self.log_scale + math.log(2.0)) + float(special.logsumexp(terms, b=w))


@dataclass(frozen=True)
class NoncentralFactor:
    """One linear-ending residual module without hidden layers: ``T = s chi'2_n(1/s)``, ``s = eta^2 c_out / n``."""

    n: int
    eta: float
    c_out: float

    @property
    def p_atom(self) -> float:
        return 0.0

    @property
    def s(self) -> float:
        return self.eta**2 * self.c_out / self.n

    def _terms(self) -> tuple[np.ndarray, np.ndarray]:
        """Degrees of freedom ``n + 2J`` and Poisson weights of ``J ~ Poisson(lambda/2)``."""
        mu = 0.5 / self.s
        lo = max(0, int(mu - 12 * math.sqrt(mu) - 20))
        hi = int(mu + 12 * math.sqrt(mu) + 40)
        from scipy import special

        j = np.arange(lo, hi + 1)
        w = np.exp(j * math.log(mu) - mu - special.gammaln(j + 1.0))  # Poisson(mu) pmf
        keep = w >= _PMF_CUT * w.max()
        return self.n + 2.0 * j[keep], w[keep] / w[keep].sum()

    def log_mean_var(self) -> tuple[float, float]:
        return _log_chi2_mixture_mean_var(*self._terms(), math.log(self.s))

    def log_cf_alive(self, t: np.ndarray) -> np.ndarray:
        dof, w = self._terms()
        from scipy import special
        z = special.loggamma(dof[None, :] / 2 + 1j * t[:, None]) - special.gammaln(dof / 2)[None, :]
        return 1j * t * math.log(2.0 * self.s) + np.log(np.exp(z) @ w)

    def log_moment_alive(self, p: float, truncated: bool = False) -> float:
        if p <= -0.5 * self.n:
            return math.inf
        dof, w = self._terms()
        from scipy import special
        terms = special.gammaln(dof / 2 + p) - special.gammaln(dof / 2)
        return p * math.log(2.0 * self.s) + float(special.logsumexp(terms, b=w))


def _log_beta_mean_var(a: np.ndarray, ab: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``log Beta(a, ab - a)`` (``psi(a) - psi(ab)``, ``psi'(a) - psi'(ab)``; 0 and 0 at
    ``a = ab``, the atom at 1)."""
    from scipy import special
    return special.digamma(a) - special.digamma(ab), special.polygamma(1, a) - special.polygamma(1, ab)


@dataclass(frozen=True)
class OrthogonalFactor:
    """One fully connected layer with Haar-orthogonal weights (``n x n_in``, gain ``sqrt(c)``):
    ``Y = c (n_in / n) B Beta(K/2, (n - K)/2)``, ``K ~ Bin(n, 1/2)``; ``K = 0`` is death.

    ``B = 1`` if ``n >= n_in``, else ``B ~ Beta(n/2, (n_in - n)/2)``: the squared length a Haar
    matrix with orthonormal rows keeps. ``Beta(K/2, (n - K)/2)`` is the part of a uniform
    direction's squared length on its ``K`` positive coordinates (1 when ``K = n``).
    ``E[Beta(a, b)^{it}] = Gamma(a + it) Gamma(a + b) / (Gamma(a) Gamma(a + b + it))``.
    """

    n_in: int
    n: int
    c: float

    def _terms(self) -> tuple[np.ndarray, np.ndarray]:
        return ChiSquareBinomialFactor(self.n, 1.0)._terms()

    @property
    def p_atom(self) -> float:
        return 2.0 ** (-self.n)

    @property
    def log_scale(self) -> float:
        return math.log(self.c * self.n_in / self.n)

    @property
    def _projects(self) -> bool:
        return self.n < self.n_in

    def log_cf_alive(self, t: np.ndarray) -> np.ndarray:
        from scipy import special
        k, p = self._terms()
        h = self.n / 2.0
        z = (special.loggamma(k[None, :] / 2 + 1j * t[:, None]) - special.gammaln(k / 2)[None, :]
             + special.gammaln(h) - special.loggamma(h + 1j * t)[:, None])
        out = 1j * t * self.log_scale + np.log(np.exp(z) @ p)
        if self._projects:
            g = self.n_in / 2.0
            out = out + special.loggamma(h + 1j * t) - special.gammaln(h) + special.gammaln(g) - \
                special.loggamma(g + 1j * t)
        return out

    def log_mean_var(self) -> tuple[float, float]:
        k, p = self._terms()
        mu_k, var_k = _log_beta_mean_var(k / 2, self.n / 2.0)
        mean = float(p @ mu_k)
        var = float(p @ var_k + p @ (mu_k - mean) ** 2)
        if self._projects:
            mb, vb = _log_beta_mean_var(np.array([self.n / 2.0]), self.n_in / 2.0)
            mean, var = mean + float(mb[0]), var + float(vb[0])
        return self.log_scale + mean, var

    def log_moment_alive(self, p: float, truncated: bool = False) -> float:
        """``log E[Y^p | K >= 1]``: ``E[Beta(a, b)^p] = Gamma(a + p) Gamma(a + b) / (Gamma(a) Gamma(a + b + p))``,
        finite for ``p > -a``; ``inf`` for ``p <= -1/2`` (``p <= -K_min/2`` if ``truncated``)."""
        k, w = self._terms()
        if p <= (-0.5 * k.min() if truncated else -0.5):
            return math.inf
        from scipy import special
        h = self.n / 2.0
        terms = special.gammaln(k / 2 + p) - special.gammaln(k / 2)
        total = p * self.log_scale + float(special.logsumexp(terms, b=w)) + special.gammaln(h) - special.gammaln(h + p)
        if self._projects:
            g = self.n_in / 2.0
            total += special.gammaln(h + p) - special.gammaln(h) + special.gammaln(g) - special.gammaln(g + p)
        return float(total)


Factor = ChiSquareBinomialFactor | NoncentralFactor | OrthogonalFactor


class LengthLaw:
    """The exact law of ``M = M_0 prod_j Y_j`` for independent layer (or module) ratios ``Y_j``.

    Build it with :func:`length_law` (fully connected nets) or
    :func:`residual_length_law`. ``M`` has an atom at 0 of mass
    ``p_dead`` and, given ``M > 0``, a smooth law of ``log M`` computed
    by characteristic-function inversion. ``log_p_alive`` is
    ``log P(M > 0)``, exact where ``P(dead)`` rounds to 1; moments and
    quantiles have log forms (:meth:`log_moment`, :meth:`log_quantile_of_m`)
    that hold at any depth.

    Methods taking ``m`` accept arrays (any shape) and return arrays of the
    same shape; with ``return_error=True`` they also return an error
    estimate of the same shape.
    """

    def __init__(self, factors: Sequence[Factor], m0: float = 1.0):
        if not factors:
            raise ValueError("factors must hold at least one layer")
        if not (m0 > 0 and math.isfinite(m0)):
            raise ValueError(f"m0 must be a finite number > 0, got {m0}")
        self.factors = tuple(factors)
        self.m0 = float(m0)
        # -expm1(sum log1p(-p)) rather than 1 - prod(1 - p): no cancellation when P(dead) is tiny
        self.log_p_alive = float(np.sum(np.log1p([-f.p_atom for f in self.factors])))
        self.p_dead = float(-np.expm1(self.log_p_alive)) + 0.0  # (+ 0.0: never -0.0 where every net lives)
        self._groups: dict[Factor, int] = {}
        for f in self.factors:  # equal layers share one characteristic function, raised to a power
            self._groups[f] = self._groups.get(f, 0) + 1
        self._window = self._inversion_window()
        self._grids: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------- moments
    def log_moment_alive(self, p: float, truncated: bool = False) -> float:
        """``log E[M^p | M > 0]``, finite for ``p > -1/2`` (``p > -n/2`` for residual laws)."""
        total = p * math.log(self.m0)
        for f, count in self._groups.items():
            total += count * f.log_moment_alive(p, truncated)
        return total

    def moment(self, p: float, given_alive: bool = False) -> float:
        """``E[M^p]`` for real ``p``, as finite sums of Gamma-function ratios.

        Parameters
        ----------
        p : float
        given_alive : bool
            Condition on ``M > 0``. Unconditionally, ``E[M^p]`` for ``p > 0``
            counts dead nets as 0, ``E[M^0] = 1``, and ``p < 0`` is infinite
            when ``P(dead) > 0``.

        Returns
        -------
        float
            ``inf`` where the moment is infinite (``p <= -1/2`` given alive,
            from layers whose ``K = 1``).
        """
        log_m = self.log_moment(p, given_alive)
        return math.exp(log_m) if log_m < 709.0 else math.inf  # (0 or inf beyond float64: see log_moment)

    def log_moment(self, p: float, given_alive: bool = False) -> float:
        """``log E[M^p]`` (as :meth:`moment`), finite wherever the moment is, however deep the net.

        ``E[M_d]`` of a LeCun net of depth 1100 is ``2^-1100``: :meth:`moment`
        gives 0, this gives ``-762.5``.
        """
        if p == 0:
            return 0.0
        log_alive = self.log_moment_alive(p)
        if given_alive or not math.isfinite(log_alive):
            return log_alive
        if p < 0 and self.p_dead > 0:
            return math.inf
        return self.log_p_alive + log_alive  # (log1p(-p_dead) fails where P(dead) rounds to 1)

    def log_mean_var(self) -> tuple[float, float]:
        """Mean and variance of ``log M`` given ``M > 0`` (sums over the independent layers)."""
        mean, var = math.log(self.m0), 0.0
        for f, count in self._groups.items():
            fm, fv = f.log_mean_var()
            mean, var = mean + count * fm, var + count * fv
        return mean, var

    # -------------------------------------------------- characteristic fn
    def log_cf(self, t: np.ndarray) -> np.ndarray:
        """``log E[e^{it log M} | M > 0]`` at real ``t`` (1-D array)."""
        t = np.asarray(t, dtype=float)
        out = 1j * t * math.log(self.m0)
        for f, count in self._groups.items():
            out = out + count * f.log_cf_alive(t)
        return out

    def _inversion_window(self) -> tuple[float, float]:
        """``[a, b]`` holding all but ``_TAIL`` of ``log M``'s mass (given alive), by Chernoff bounds."""
        mean, var = self.log_mean_var()
        sd = math.sqrt(max(var, 1e-300))
        left = 0.02 * 1.3 ** np.arange(40)
        right = 0.05 * 1.3 ** np.arange(40)
        log_tail = math.log(_TAIL)
        a = max(self._chernoff(-s, log_tail) for s in left)  # each s gives a valid bound: keep the tightest
        b = max(mean + 1.0, min(self._chernoff(s, log_tail) for s in right))
        a = min(a, mean - 12 * sd)
        b = max(b, mean + 12 * sd)
        return a, b

    def _chernoff(self, s: float, log_tail: float) -> float:
        """Point beyond which ``P`` is below ``e^log_tail``: ``P(L >= x) <= E[e^{sL}] e^{-sx}`` (and mirrored)."""
        lm = self.log_moment_alive(s, truncated=True)
        if not math.isfinite(lm):
            return math.inf if s > 0 else -math.inf
        return (lm - log_tail) / s

    def _frequencies(self, refine: int) -> tuple[np.ndarray, np.ndarray]:
        """Midpoints ``t_k`` and ``phi(t_k)``, step ``pi / (b - a) / refine``, until ``|phi|`` is negligible."""
        if refine not in self._grids:
            a, b = self._window
            h = math.pi / (b - a) / refine
            ts, phis = [], []
            start = 0
            block = 256
            while True:
                t = (np.arange(start, start + block) + 0.5) * h
                phi = np.exp(self.log_cf(t))
                ts.append(t)
                phis.append(phi)
                start += block
                if np.abs(phi[-block // 4:]).max() < _TAIL or start > 2_000_000:
                    break
                block *= 2
            self._grids[refine] = (np.concatenate(ts), np.concatenate(phis))
        return self._grids[refine]

    def _gil_pelaez(self, x: np.ndarray, refine: int, upper: bool) -> np.ndarray:
        t, phi = self._frequencies(refine)
        k = np.arange(t.size) + 0.5
        out = np.empty(x.shape)
        flat, res = x.ravel(), out.ravel()
        step = max(1, 2_000_000 // t.size)
        for i in range(0, flat.size, step):
            xs = flat[i:i + step]
            s = (np.imag(phi[None, :] * np.exp(-1j * np.outer(xs, t))) / k[None, :]).sum(axis=1) / math.pi
            res[i:i + step] = 0.5 + s if upper else 0.5 - s
        a, b = self._window  # outside it the sum is aliased; the true value is within _TAIL of 0 or 1
        below, above = (1.0, 0.0) if upper else (0.0, 1.0)
        return np.clip(np.where(x < a, below, np.where(x > b, above, out)), 0.0, 1.0)

    def _log_density(self, x: np.ndarray, refine: int) -> np.ndarray:
        t, phi = self._frequencies(refine)
        h = t[1] - t[0] if t.size > 1 else 2 * t[0]
        out = np.empty(x.shape)
        flat, res = x.ravel(), out.ravel()
        step = max(1, 2_000_000 // t.size)
        for i in range(0, flat.size, step):
            xs = flat[i:i + step]
            res[i:i + step] = h / math.pi * np.real(phi[None, :] * np.exp(-1j * np.outer(xs, t))).sum(axis=1)
        a, b = self._window
        return np.where((x < a) | (x > b), 0.0, np.maximum(out, 0.0))

    def _with_error(self, fn, x, return_error):
        x = np.asarray(x, dtype=float)
        fine = fn(x, 2)
        if not return_error:
            return fine
        return fine, np.abs(fine - fn(x, 1)) + 1e-15

    # ---------------------------------------------------- law of log M
    def log_cdf(self, x, return_error: bool = False):
        """``P(log M <= x | M > 0)``."""
        return self._with_error(lambda v, r: self._gil_pelaez(v, r, upper=False), x, return_error)

    def log_sf(self, x, return_error: bool = False):
        """``P(log M > x | M > 0)``, computed directly (accurate in the right tail)."""
        return self._with_error(lambda v, r: self._gil_pelaez(v, r, upper=True), x, return_error)

    def log_pdf(self, x, return_error: bool = False):
        """Density of ``log M`` given ``M > 0``."""
        return self._with_error(self._log_density, x, return_error)

    def log_quantile(self, q) -> np.ndarray:
        """``x`` with ``P(log M <= x | M > 0) = q``, ``0 < q < 1`` (lower tail by the CDF, upper by the SF)."""
        from scipy import optimize

        q = np.asarray(q, dtype=float)
        if np.any((q <= 0) | (q >= 1)):
            raise ValueError(f"q must lie in (0, 1), got {q}")
        a, b = self._window
        out = np.empty(q.shape)
        for i, qi in np.ndenumerate(q):
            if qi <= 0.5:
                g = lambda x, qi=qi: float(self._gil_pelaez(np.array([x]), 2, False)[0]) - qi
            else:
                g = lambda x, qi=qi: (1.0 - qi) - float(self._gil_pelaez(np.array([x]), 2, True)[0])
            out[i] = optimize.brentq(g, a, b, xtol=1e-13, rtol=1e-14)
        return out

    # ------------------------------------------------------- law of M
    def cdf(self, m, return_error: bool = False):
        """``P(M <= m)``, the atom ``P(dead)`` at 0 included."""
        m = np.asarray(m, dtype=float)
        x = np.log(np.where(m > 0, m, 1.0))
        f = self.log_cdf(x, return_error)
        f, err = (f if return_error else (f, None))
        out = np.where(m > 0, self.p_dead + (1 - self.p_dead) * f, np.where(m == 0, self.p_dead, 0.0))
        if return_error:
            return out, np.where(m > 0, (1 - self.p_dead) * err, 0.0)
        return out

    def sf(self, m, return_error: bool = False):
        """``P(M > m)``."""
        m = np.asarray(m, dtype=float)
        x = np.log(np.where(m > 0, m, 1.0))
        s = self.log_sf(x, return_error)
        s, err = (s if return_error else (s, None))
        alive = 1 - self.p_dead
        out = np.where(m > 0, alive * s, np.where(m == 0, alive, 1.0))
        if return_error:
            return out, np.where(m > 0, alive * err, 0.0)
        return out

    def pdf(self, m, return_error: bool = False):
        """Density of the continuous part of ``M`` (it integrates to ``1 - P(dead)``)."""
        m = np.asarray(m, dtype=float)
        pos = m > 0
        x = np.log(np.where(pos, m, 1.0))
        f = self.log_pdf(x, return_error)
        f, err = (f if return_error else (f, None))
        scale = np.where(pos, (1 - self.p_dead) / np.where(pos, m, 1.0), 0.0)
        return (f * scale, err * scale) if return_error else f * scale

    def log_quantile_of_m(self, q, return_error: bool = False):
        """``log`` of :meth:`quantile` (``-inf`` for ``q <= P(dead)``), at any depth.

        With ``return_error``, also the CDF's error estimate at the quantile
        divided by the density of ``log M`` there: the error in ``log M``,
        that is the relative error of the quantile (0 at the atom).
        """
        q = np.asarray(q, dtype=float)
        if np.any((q <= 0) | (q >= 1)):
            raise ValueError(f"q must lie in (0, 1), got {q}")
        out = np.full(q.shape, -np.inf)
        live = q > self.p_dead
        if np.any(live):
            out[live] = self.log_quantile((q[live] - self.p_dead) / (1 - self.p_dead))
        if not return_error:
            return out
        err = np.zeros(q.shape)
        if np.any(live):
            _, cdf_err = self.log_cdf(out[live], return_error=True)
            err[live] = cdf_err / np.maximum(self.log_pdf(out[live]), 1e-300)
        return out, err

    def quantile(self, q, return_error: bool = False):
        """``inf{m : P(M <= m) >= q}``: 0 for ``q <= P(dead)``.

        With ``return_error``, also the CDF's error estimate at the quantile
        divided by the density there (0 where the quantile is the atom).
        """
        out = np.exp(self.log_quantile_of_m(q))  # (checks q; exp(-inf) = 0 at the atom)
        if not return_error:
            return out
        live = np.asarray(q, dtype=float) > self.p_dead
        err = np.zeros(out.shape)
        if np.any(live):
            _, cdf_err = self.cdf(out[live], return_error=True)
            err[live] = cdf_err / np.maximum(self.pdf(out[live]), 1e-300)
        return out, err


def length_law(widths: Sequence[int], c: float | Sequence[float] = 2.0, m0: float = 1.0,
               weights: str = "gaussian") -> LengthLaw:
    """Exact law of ``M_d`` for a fully connected ReLU net without bias: Gaussian weights ``N(0, c_j/n_{j-1})``,
    or Haar-orthogonal weight matrices times ``sqrt(c_j)``.

    Parameters
    ----------
    widths : sequence of int, length d + 1
        ``n_0, ..., n_d`` (for Gaussian weights ``n_0`` enters only through ``M_0``; for orthogonal
        ones it also decides whether the first layer projects).
    c : float or sequence of float (length d)
        Gaussian: variance numerator; orthogonal: squared gain.
    m0 : float
        ``M_0 = ||x||^2 / n_0`` of the fixed input.
    weights : {"gaussian", "orthogonal"}
        ``"orthogonal"``: each layer is an :class:`fmsim.exact_law.OrthogonalFactor`,
        ``M_j / M_{j-1} = c_j (n_{j-1}/n_j) B_j Beta(K_j/2, (n_j - K_j)/2)``.

    Returns
    -------
    LengthLaw

    Examples
    --------
    >>> law = length_law([50] * 51)          # He, depth = width = 50
    >>> law.quantile([0.1, 0.5, 0.9])        # doctest: +SKIP
    """
    widths = [int(n) for n in widths]
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"widths must hold n_0..n_d with d >= 1 and every n_j >= 1, got {widths}")
    try:
        cs = np.broadcast_to(np.asarray(c, dtype=float), (len(widths) - 1,))
    except ValueError:
        raise ValueError(f"c must be one number or one per layer ({len(widths) - 1}), got {c}") from None
    if np.any(~np.isfinite(cs)) or np.any(cs <= 0):
        raise ValueError(f"c must be finite and > 0, got {c}")
    if weights == "gaussian":
        return LengthLaw([ChiSquareBinomialFactor(n, float(cj)) for n, cj in zip(widths[1:], cs)], m0)
    if weights != "orthogonal":
        raise ValueError(f"weights must be 'gaussian' or 'orthogonal', got {weights!r}")
    factors = [OrthogonalFactor(n_in, n, float(cj)) for n_in, n, cj in zip(widths[:-1], widths[1:], cs)]
    if all(f.n == 1 and f.n_in == 1 for f in factors):
        raise ValueError("with orthogonal weights and every width 1, M_d is 0 or exactly M_0 prod c_j: no "
                         "continuous law to invert (p_dead is 1 - 2^-d)")
    return LengthLaw(factors, m0)


def residual_length_law(n: int, etas: Sequence[float], c_out: float = 2.0, m0: float = 1.0) -> LengthLaw:
    """Exact law of ``M_L`` for a linear-ending residual net whose modules have no hidden layer.

    ``y_l = y_{l-1} + eta_l W_l y_{l-1}``, ``W_l`` Gaussian with variance
    ``c_out / n``, no bias: ``M_l / M_{l-1} = (eta_l^2 c_out / n) chi'2_n(n / (eta_l^2 c_out))``
    (module docstring). Modules with hidden layers have no such law here.

    Returns
    -------
    LengthLaw
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    etas = [float(e) for e in etas]
    if not etas or min(etas) <= 0:
        raise ValueError(f"etas must be a non-empty sequence of numbers > 0, got {etas}")
    if not c_out > 0:
        raise ValueError(f"c_out must be > 0, got {c_out}")
    return LengthLaw([NoncentralFactor(int(n), e, float(c_out)) for e in etas], m0)
