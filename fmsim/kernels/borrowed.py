"""Borrowed views of a kernel's scratch arrays: the same memory, with no reference count.

numba counts the references to every array it allocates (``NRT_incref`` and ``NRT_decref``, each an atomic
read-modify-write of the array's memory record). Each name an array takes in a kernel's body, an inlined
helper's argument, a slice, an array returned from a branch, adds a pair; numba's pruning pass removes the
pairs it can prove redundant, and in the rows of a layer it could not: 3 increments and 4 decrements a
row of the FC ``full`` kernel. On the Intel Xeon we measured, a locked instruction costs tens of cycles and
holds back the loads behind it: a software-clock profile put those 7 at close to half of the kernel's
time.

:func:`borrowed` gives a view of an array that owns nothing (its memory record is null, as a global
array's is): every count on it, or on a view of it, is a call that returns at once. The kernel keeps the
array itself alive past the view's last use with :func:`keep_alive`, so numba frees it only after that.
"""

from __future__ import annotations

from numba import types
from numba.extending import intrinsic

__all__ = ["borrowed", "keep_alive"]


def _array_or_arrays(value_type) -> bool:
    """Whether ``value_type`` is an array or a tuple of arrays."""
    if isinstance(value_type, types.Array):
        return True
    return isinstance(value_type, types.BaseTuple) and all(isinstance(t, types.Array) for t in value_type.types)


def _borrowed_view(context, builder, array_type, value):
    source = context.make_array(array_type)(context, builder, value)
    view = context.make_array(array_type)(context, builder)
    context.populate_array(view, data=source.data, shape=source.shape, strides=source.strides,
                           itemsize=source.itemsize, meminfo=None, parent=None)
    return view._getvalue()


@intrinsic
def borrowed(typingctx, arrays):
    """A view of an array (same data, shape, strides and type), or a tuple of views of a tuple of arrays, that
    owns no reference: numba never counts references to it or to its slices, and never frees it. The arrays
    must outlive every use of their views: call :func:`keep_alive` on them after the last one."""
    if not _array_or_arrays(arrays):
        return None

    def codegen(context, builder, signature, args):
        (value_type,), (value,) = signature.args, args
        if isinstance(value_type, types.Array):
            return _borrowed_view(context, builder, value_type, value)
        views = [_borrowed_view(context, builder, t, builder.extract_value(value, i))
                 for i, t in enumerate(value_type.types)]
        return context.make_tuple(builder, value_type, views)

    return arrays(arrays), codegen


@intrinsic
def keep_alive(typingctx, arrays):
    """Nothing, at run time: a use of ``arrays`` (an array or a tuple of arrays) here, so that numba releases
    them (and may free them) only after this point, past the last use of their :func:`borrowed` views."""
    if not _array_or_arrays(arrays):
        return None

    def codegen(context, builder, signature, args):
        return context.get_dummy_value()

    return types.none(arrays), codegen
