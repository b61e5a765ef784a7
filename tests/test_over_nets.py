"""The kernels' nets shared out among threads (fmsim.kernels.over_nets): the same bits for any thread count and
any split, and each net given to exactly one call."""

import threading

import numba
import numpy as np
import pytest
from numba import njit

from fmsim.kernels import cpu, cpu_orthogonal
from fmsim.kernels.over_nets import SPANS_PER_THREAD, net_spans, over_nets, run_over_nets, run_spans
from fmsim.kernels.scalar import RENORM_HIGH
from fmsim.sampling.laws import LAW_CODES


@pytest.mark.parametrize("m, threads", [(1, 2), (2, 2), (7, 2), (8, 2), (9, 2), (1000, 2), (1001, 3), (5, 16)])
def test_spans_cover_the_nets_in_order_with_even_sizes(m, threads):
    spans = net_spans(m, threads)
    assert spans[0][0] == 0 and spans[-1][1] == m
    assert all(a[1] == b[0] for a, b in zip(spans[:-1], spans[1:]))  # contiguous, in order
    sizes = [b - a for a, b in spans]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    assert len(spans) == min(m, threads * SPANS_PER_THREAD)


@njit(nogil=True)
def _tag_nets(scale, net0, out_a, out_b):
    for i in range(out_a.shape[0]):
        out_a[i, 0] = net0 + i
        out_a[i, 1] += 1.0  # counts the calls that wrote row i
        out_b[i] = scale * (net0 + i)


def test_each_net_goes_to_one_call_with_its_own_index():
    threads = numba.get_num_threads()
    out_a, out_b = np.zeros((1001, 2)), np.zeros(1001)
    run_over_nets(_tag_nets, (0.5, np.uint64(40), out_a, out_b), 1)
    np.testing.assert_array_equal(out_a[:, 0], 40 + np.arange(1001))
    np.testing.assert_array_equal(out_a[:, 1], np.ones(1001))
    np.testing.assert_array_equal(out_b, 0.5 * (40 + np.arange(1001)))
    assert threads >= 1


def test_the_calls_run_on_the_pool_when_there_are_threads(monkeypatch):
    seen = set()

    def kernel(net0, out):
        seen.add(threading.current_thread().name)
        out[:] = net0

    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    out = np.zeros((64, 1))
    run_over_nets(kernel, (3, out), 0, outputs=1)
    assert all(name.startswith("fmsim-nets") for name in seen) and seen
    monkeypatch.setattr(numba, "get_num_threads", lambda: 1)
    seen.clear()
    run_over_nets(kernel, (3, out), 0, outputs=1)
    assert seen == {threading.current_thread().name}  # one thread: the caller runs it


@pytest.mark.parametrize("count, threads", [(0, 2), (1, 2), (2, 1), (2, 2), (37, 3)])
def test_run_spans_calls_each_item_once(count, threads, monkeypatch):
    monkeypatch.setattr(numba, "get_num_threads", lambda: threads)
    seen, calls = np.zeros(count, dtype=int), []

    def call(start, stop):
        calls.append((start, stop, threading.current_thread().name))
        seen[start:stop] += 1

    run_spans(count, call)
    np.testing.assert_array_equal(seen, np.ones(count, dtype=int))
    if threads == 1 or count < 2:
        assert [c[:2] for c in calls] == [(0, count)] and calls[0][2] == threading.current_thread().name
    else:
        assert sorted(c[:2] for c in calls) == net_spans(count, threads)
        assert all(c[2].startswith("fmsim-nets") for c in calls)


def _fc_args(law, nets, net0=5):
    widths = np.array([12, 7, 20, 3, 15, 18, 11], dtype=np.int64)  # each buffer holds wider layers of a net before
    d = len(widths) - 1
    x = np.random.default_rng(3).standard_normal(widths[0])
    x /= np.sqrt(np.mean(x * x))
    first = (np.empty((2, 0)), np.zeros(1, dtype=np.int64), np.zeros(3))
    return (x, 0, widths, np.sqrt(2.0 / widths[:-1]), np.full(d, 0.1), law, np.uint64(7), np.uint64(9), net0, 0.0,
            False, *first, RENORM_HIGH, np.empty((nets, d + 1)), np.empty((nets, d + 1)))


def _res_args(law, nets, net0=5):
    x = np.random.default_rng(4).standard_normal(10)
    x /= np.sqrt(np.mean(x * x))
    module_widths = np.array([14, 6], dtype=np.int64)
    return (x, 0, module_widths, np.full(5, 0.5), np.sqrt(2.0 / np.array([10.0, 14.0])), np.sqrt(1.0 / 6), True,
            np.full(3, 0.1), law, np.uint64(7), np.uint64(9), net0, 0.0, False, np.empty((nets, 6)),
            np.empty((nets, 6)))


def _conv_args(law, nets, net0=5):
    channels = np.array([3, 6, 2, 5], dtype=np.int64)  # narrower layers after wider ones: their buffers hold more
    x = np.random.default_rng(6).standard_normal(3 * 5 * 6)
    x /= np.sqrt(np.mean(x * x))
    return (x, 0, channels, 5, 6, 3, 3, np.sqrt(2.0 / (9 * channels[:-1])), np.full(3, 0.1), law, np.uint64(7),
            np.uint64(9), net0, np.float32(0.0), True, np.empty((nets, 4)), np.empty((nets, 4)))


def _exact_args(nets):
    widths = np.full(9, 20, dtype=np.int64)
    return (1.0, 0, widths, np.full(8, 2.0), np.zeros(8), np.uint64(7), np.uint64(9), 5, np.empty((nets, 9)),
            np.empty((nets, 9)))


@pytest.mark.parametrize("kernel", ["fc_full", "res_full", "conv_full", "fc_exact", "fc_orthogonal_exact"])
def test_any_thread_count_gives_the_bits_of_one_call_on_one_thread(kernel, monkeypatch):
    """The kernel shared out among 1, 2, 3 and 5 threads (other spans each time, so each span's first net finds
    other nets' values in the buffers the kernel allocates once per call, or none), and its compiled loop called
    once over all the nets, agree bitwise."""
    nets = 203
    if kernel == "fc_full":
        make = lambda: _fc_args(LAW_CODES["truncated_normal"], nets)  # noqa: E731
        call = cpu.fc_full
        whole = lambda a: cpu.fc_full_for_law(a[5], a[10])(*a[:5], *a[6:10], *a[11:])  # noqa: E731
    elif kernel == "res_full":
        make = lambda: _res_args(LAW_CODES["laplace"], nets)  # noqa: E731
        call = cpu.res_full
        whole = lambda a: cpu.res_full_for_law(a[8], a[13])(*a[:8], *a[9:13], *a[14:])  # noqa: E731
    elif kernel == "conv_full":
        make = lambda: _conv_args(LAW_CODES["truncated_normal"], nets)  # noqa: E731
        call = cpu.conv_full
        whole = lambda a: cpu.conv_full_for_law(a[9], a[14])(*a[:9], *a[10:14], *a[15:])  # noqa: E731
    elif kernel == "fc_exact":
        make, call, whole = lambda: _exact_args(nets), cpu.fc_exact, lambda a: cpu.fc_exact.kernel(*a)
    else:
        def make():
            a = _exact_args(nets)
            return a[:4] + a[5:]  # no biases
        call, whole = cpu_orthogonal.fc_orthogonal_exact, lambda a: cpu_orthogonal.fc_orthogonal_exact.kernel(*a)
    reference = make()
    whole(reference)
    for threads in (1, 2, 3, 5):
        monkeypatch.setattr(numba, "get_num_threads", lambda t=threads: t)
        args = make()
        call(*args)
        for got, want in zip(args[-2:], reference[-2:]):
            assert got.tobytes() == want.tobytes(), threads


def test_a_kernel_called_on_its_own_computes_every_net():
    args = _exact_args(10)
    cpu.fc_exact.kernel(*args)
    assert np.isfinite(args[-1]).all() and (args[-2][:, 0] == 1.0).all()
    assert callable(over_nets(0)(lambda net0, out: None))


@pytest.mark.parametrize("threads", [1, 2])
def test_a_position_that_is_not_the_first_net_is_refused_on_any_thread_count(threads, monkeypatch):
    monkeypatch.setattr(numba, "get_num_threads", lambda: threads)
    with pytest.raises(TypeError, match="net0_at=0"):
        run_over_nets(_tag_nets, (0.5, np.uint64(40), np.zeros((8, 2)), np.zeros(8)), 0)


def _carried_runs():
    """The Gram-chain, carry and summary kernels, each through the function that runs it, on a few dozen nets."""
    import fmsim
    from fmsim.running import statistics
    from fmsim.running.gram import carried_chunk, exact_inputs, exact_residual, exact_tangents
    from fmsim.running.simulate import make_config
    from fmsim.running.summary import block_moments

    x = np.array([1.0, -0.5, 2.0, 0.4, 0.3, 1.0])
    u = np.array([[0.0, 1.0, 0.0, 2.0, 0.0, -1.0], [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]])
    widths = [6, 9, 4, 7, 5]
    carried = make_config(fmsim.FullyConnected(widths), fmsim.Init.scheme("he"), 37, 7, method="full", x=x,
                          tangents=u, chunk_size=1024)
    lengths = np.random.default_rng(5).lognormal(size=(2100, 8))
    lengths[3, 2:] = 0.0  # a dead net
    logs = np.log(lengths, where=lengths > 0, out=np.full_like(lengths, -np.inf))
    residual = fmsim.Residual(6, [1.0, 0.6, 0.8], module_widths=[5, 4], ending="relu", c_out=2.0)
    return {
        "tangent_exact": lambda: exact_tangents(widths, 2.0, x, u, 37, 11, net0=3),
        "inputs_exact": lambda: exact_inputs(widths, 2.0, np.stack([x, u[0], u[1]]), 37, 11, net0=3),
        "residual_carried": lambda: exact_residual(residual, 2.0, np.stack([x, u[0]]), 37, 11, net0=3),
        "fc_full_carry": lambda: carried_chunk(carried, 0, 37),
        "statistics_pass": lambda: statistics.compute(lengths, logs),
        "block_moments_pass": lambda: block_moments(logs, statistics.compute(lengths, logs)),
    }


@pytest.mark.parametrize("kernel", ["tangent_exact", "inputs_exact", "residual_carried", "fc_full_carry",
                                    "statistics_pass", "block_moments_pass"])
def test_the_gram_carry_and_summary_kernels_give_the_bits_of_one_thread_on_any_thread_count(kernel, monkeypatch):
    """One thread runs each kernel as one call over all its nets (or items); 2, 3 and 5 threads split them into
    spans on the pool. The outputs agree bitwise."""
    run = _carried_runs()[kernel]

    def arrays(result):
        if isinstance(result, np.ndarray):
            return [result]
        return [v for v in vars(result).values() if isinstance(v, np.ndarray)]

    monkeypatch.setattr(numba, "get_num_threads", lambda: 1)
    reference = arrays(run())
    assert reference and all(a.size for a in reference)
    for threads in (2, 3, 5):
        monkeypatch.setattr(numba, "get_num_threads", lambda t=threads: t)
        got = arrays(run())
        assert len(got) == len(reference)
        for g, want in zip(got, reference):
            assert g.tobytes() == want.tobytes(), (kernel, threads)
