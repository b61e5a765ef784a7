"""fmsim.kernels.borrowed: views that count no references, over the same memory, freed once."""

import numpy as np
import pytest
from llvmlite import ir
from numba import njit, types
from numba.core.runtime import _nrt_python, rtsys
from numba.extending import intrinsic

from fmsim.kernels.borrowed import borrowed, keep_alive


@njit
def _write_through(n):
    # 1D, 2D and strided arrays, alone and in a tuple: every write through a view lands in the array it views
    owned = (np.zeros(n), np.zeros((3, n)))
    strided = np.zeros(2 * n)[::2]
    a, b = borrowed(owned)
    c = borrowed(strided)
    for k in range(n):
        a[k] = k + 1.0
        b[2, k] = 2.0 * k
        c[k] = -1.0 * k
    tail = a[n // 2:]  # a slice of a view is a view of the same memory
    tail[0] += 100.0
    keep_alive(owned)
    keep_alive(strided)
    return owned[0].copy(), owned[1].copy(), strided.copy()


def test_views_read_and_write_the_arrays_memory():
    n = 9
    a, b, c = _write_through(n)
    expected_a = np.arange(1.0, n + 1)
    expected_a[n // 2] += 100.0
    np.testing.assert_array_equal(a, expected_a)
    np.testing.assert_array_equal(b[2], 2.0 * np.arange(n))
    np.testing.assert_array_equal(b[:2], 0.0)
    np.testing.assert_array_equal(c, -1.0 * np.arange(n))


@pytest.fixture
def allocation_stats():
    enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    yield rtsys.get_allocation_stats
    if not enabled:
        _nrt_python.memsys_disable_stats()


def test_nothing_leaks_nothing_is_freed_twice(allocation_stats):
    _write_through(5)
    before = allocation_stats()
    for _ in range(10):
        _write_through(50)
    after = allocation_stats()
    # every allocation made by the calls is freed once (numba aborts on a double free)
    assert after.alloc - before.alloc == after.free - before.free > 0
    assert after.mi_alloc - before.mi_alloc == after.mi_free - before.mi_free > 0


@intrinsic
def _meminfo_address(typingctx, array):
    # the address of an array's memory record (what numba counts references on); 0 for none
    def codegen(context, builder, signature, args):
        return builder.ptrtoint(context.make_array(signature.args[0])(context, builder, args[0]).meminfo,
                                ir.IntType(64))
    return types.uint64(array), codegen


@njit
def _records():
    owned = np.ones(8)
    view = borrowed(owned)
    part = view[2:]
    (a, b) = borrowed((owned, owned[1:]))
    addresses = (_meminfo_address(owned), _meminfo_address(view), _meminfo_address(part), _meminfo_address(a),
                 _meminfo_address(b))
    keep_alive(owned)
    return addresses


def test_views_have_no_memory_record():
    # numba counts references on an array's memory record: a borrowed view, its slices, and each view of a
    # tuple have none, so every count on them returns at once (in the kernels' rows: 3 increments and 4
    # decrements a row before; see the Performance page)
    owned, view, part, a, b = _records()
    assert owned != 0
    assert view == part == a == b == 0
