"""Numbers for people: values that may lie beyond float64's range, shown from their logarithms.

A length ``M_j`` of a deep net can be ``2^-1100`` or ``10^400``: float64
holds neither, but its natural log is an ordinary number. Every printed
length goes through :func:`format_from_log`, which writes it plainly where
float64 holds it and as a power of ten, ``10^-331.13``, where it does not; it
never prints 0 or inf for a value that is neither.
"""

from __future__ import annotations

import math

__all__ = ["format_from_log", "format_value"]

_LN10 = math.log(10.0)
_PLAIN = 690.0  # |log x| below this: x and its neighbours are normal float64 numbers (e^709 is the largest)


def format_from_log(log_x: float, digits: int = 6) -> str:
    """A positive number given by its natural log ``log_x``: ``"%.{digits}g"`` where float64 holds it,
    else ``"10^e"`` with ``e`` to two decimals; ``"0"`` for ``-inf`` (a true zero), ``"inf"``, ``"nan"``.

    Examples
    --------
    >>> format_from_log(math.log(0.5))
    '0.5'
    >>> format_from_log(-1100 * math.log(2))
    '10^-331.13'
    """
    if math.isnan(log_x):
        return "nan"
    if log_x == -math.inf:
        return "0"
    if log_x == math.inf:
        return "inf"
    if abs(log_x) < _PLAIN:
        return f"{math.exp(log_x):.{digits}g}"
    return f"10^{log_x / _LN10:.2f}"


def format_value(x: float, log_x: float | None = None, digits: int = 6) -> str:
    """``x`` as :func:`format_from_log` writes it, from ``log_x`` where given (so 0 and inf from an underflow
    or an overflow are shown as the powers of ten they stand for)."""
    if log_x is not None and not math.isnan(log_x):
        return format_from_log(log_x, digits)
    if x > 0 and math.isfinite(x):
        return format_from_log(math.log(x), digits)
    return f"{x:.{digits}g}"
