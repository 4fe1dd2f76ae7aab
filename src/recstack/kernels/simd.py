"""Eight-float vectors for numba kernels: loads, stores and FMAs that LLVM keeps in registers.

LLVM's loop vectorizer only vectorizes a kernel's innermost loop, so a value loaded in it is not reused across
the loops around it (register blocking): lane-major kernels then run at about two memory operations per FMA.
With ``F32x8`` values a kernel names its accumulators and loaded operands itself, several per pass, and LLVM
maps each to one AVX register (AVX2 + FMA: `recstack.kernels.registry` runs these kernels only on such CPUs).
Used by ``kernels.attention`` and ``kernels.cin``; the functions are numba intrinsics, callable from jitted code
only.
"""

# ruff: noqa: ANN401
from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, register_model

WIDTH = 8
_VEC = ir.VectorType(ir.FloatType(), WIDTH)


def _constant(value: float) -> Any:
    """An IR vector constant with ``value`` in every lane."""
    return ir.Constant(_VEC, [value] * WIDTH)


class F32x8(types.Type):
    """Numba type of an ``<8 x float>`` register value."""

    def __init__(self) -> None:
        super().__init__(name="f32x8")


f32x8 = F32x8()


@register_model(F32x8)
class _F32x8Model(models.PrimitiveModel):
    def __init__(self, dmm: Any, fe_type: Any) -> None:
        super().__init__(dmm, fe_type, _VEC)


def _element(context: Any, builder: Any, array_type: Any, array: Any, index: Any) -> Any:
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [index])


def _pointer(context: Any, builder: Any, array_type: Any, array: Any, index: Any) -> Any:
    return builder.bitcast(_element(context, builder, array_type, array, index), _VEC.as_pointer())


def _splat(builder: Any, scalar: Any) -> Any:
    """IR for a vector of eight copies of the float ``scalar``."""
    one = builder.insert_element(ir.Constant(_VEC, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), WIDTH), [0] * WIDTH)
    return builder.shuffle_vector(one, ir.Constant(_VEC, ir.Undefined), mask)


def _check_array(array: Any) -> None:
    is_array = isinstance(array, types.Array)
    if not (is_array and array.dtype == types.float32 and array.ndim == 1 and array.layout == "C"):
        raise TypingError(f"simd: expected a contiguous 1-D float32 array, got {array}")


@intrinsic
def load(typingctx: Any, array: Any, index: Any) -> Any:
    """``array[index : index + 8]`` as a vector (no bounds check)."""
    _check_array(array)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        return builder.load(_pointer(context, builder, signature.args[0], args[0], index), align=4)

    return f32x8(array, index), codegen


@intrinsic
def store(typingctx: Any, array: Any, index: Any, value: Any) -> Any:
    """``array[index : index + 8] = value`` (no bounds check)."""
    _check_array(array)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        builder.store(args[2], _pointer(context, builder, signature.args[0], args[0], index), align=4)
        return context.get_dummy_value()

    return types.none(array, index, value), codegen


@intrinsic
def splat(typingctx: Any, value: Any) -> Any:
    """A vector of eight copies of the float32 ``value``."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return _splat(builder, context.cast(builder, args[0], signature.args[0], types.float32))

    return f32x8(value), codegen


@intrinsic
def broadcast(typingctx: Any, array: Any, index: Any) -> Any:
    """``array[index]`` in every lane (no bounds check: indexing ``array[index]`` in a kernel also handles
    negative indices, several integer instructions per broadcast in an FMA loop)."""
    _check_array(array)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        index = context.cast(builder, args[1], signature.args[1], types.intp)
        element = _element(context, builder, signature.args[0], args[0], index)
        return _splat(builder, builder.load(element, align=4))

    return f32x8(array, index), codegen


@intrinsic
def zeros(typingctx: Any) -> Any:
    """A vector of zeros."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return _constant(0.0)

    return f32x8(), codegen


@intrinsic
def fma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
    """``a * b + c``, fused."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC] * 3), "llvm.fma.v8f32")
        return builder.call(fn, args)

    return f32x8(f32x8, f32x8, f32x8), codegen


def _binary(op: str) -> Any:
    @intrinsic
    def binary(typingctx: Any, a: Any, b: Any) -> Any:
        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return getattr(builder, op)(args[0], args[1], flags=("fast",))

        return f32x8(f32x8, f32x8), codegen

    return binary


add = _binary("fadd")
sub = _binary("fsub")
mul = _binary("fmul")


@intrinsic
def maximum(typingctx: Any, a: Any, b: Any) -> Any:
    """Elementwise maximum."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        greater = builder.fcmp_ordered(">", args[0], args[1])
        return builder.select(greater, args[0], args[1])

    return f32x8(f32x8, f32x8), codegen


div = _binary("fdiv")


@intrinsic
def hsum(typingctx: Any, v: Any) -> Any:
    """The sum of the eight lanes, as a float32 (three shuffle-and-add steps)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        ints = ir.VectorType(ir.IntType(32), WIDTH)
        acc = args[0]
        for half in (4, 2, 1):
            order = [(lane + half) % (2 * half) + lane // (2 * half) * 2 * half for lane in range(WIDTH)]
            swapped = builder.shuffle_vector(acc, ir.Constant(_VEC, ir.Undefined), ir.Constant(ints, order))
            acc = builder.fadd(acc, swapped, flags=("fast",))
        return builder.extract_element(acc, ir.Constant(ir.IntType(32), 0))

    return types.float32(f32x8), codegen


@intrinsic
def where_positive(typingctx: Any, mask: Any, value: Any) -> Any:
    """``value`` where ``mask > 0``, else 0 (a ReLU's backward, with the output as mask)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        positive = builder.fcmp_ordered(">", args[0], _constant(0.0))
        return builder.select(positive, args[1], _constant(0.0))

    return f32x8(f32x8, f32x8), codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 0.693359375
_LN2_LO = -2.12194440e-4
_POLY = (1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1.0, 1.0)  # e^r, degree 6, highest term first


@intrinsic
def exp(typingctx: Any, x: Any) -> Any:
    """``e^x`` for ``x <= 0`` (within 4 float32 ulps; below -87 it returns e^-87): reduction by ln 2, a degree-6
    polynomial, and 2^k from exponent bits."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        fast = ("fast",)
        low = _constant(-87.0)
        xv = builder.select(builder.fcmp_ordered(">", args[0], low), args[0], low)
        floor = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VEC, [_VEC]), "llvm.floor.v8f32")
        t = builder.fadd(builder.fmul(xv, _constant(_LOG2E), flags=fast), _constant(0.5), flags=fast)
        k = builder.call(floor, [t])
        r = builder.fsub(xv, builder.fmul(k, _constant(_LN2_HI), flags=fast), flags=fast)
        r = builder.fsub(r, builder.fmul(k, _constant(_LN2_LO), flags=fast), flags=fast)
        p = _constant(_POLY[0])
        for c in _POLY[1:]:
            p = builder.fadd(builder.fmul(p, r, flags=fast), _constant(c), flags=fast)
        ints = ir.VectorType(ir.IntType(32), WIDTH)
        bits = builder.add(builder.fptosi(k, ints), ir.Constant(ints, [127] * WIDTH))
        two_k = builder.bitcast(builder.shl(bits, ir.Constant(ints, [23] * WIDTH)), _VEC)
        return builder.fmul(p, two_k, flags=fast)

    return f32x8(f32x8), codegen


def compile_kernels(
    namespace: dict[str, Any], names: tuple[str, ...], parallel: tuple[str, ...], tag: str = ""
) -> dict[str, Any]:
    """numba-compiled copies of a kernel module's functions ``names + parallel``, by name.

    The copies run in a copy of ``namespace`` (a module's globals, plus any constants to specialize on) in
    which the ``_v<op>`` names are this module's intrinsics (``_vmax`` is ``maximum``, ``_vwhere``
    ``where_positive``) and ``_prange`` is ``numba.prange``; the kernels call each other through it. Those in
    ``parallel`` compile with ``parallel=True``. All are cached on disk under names carrying ``tag`` and
    this file's version: numba keys its cache by function name and checks only the kernel file's timestamp.
    """
    import types as pytypes
    import zlib
    from pathlib import Path

    import numba

    ops = {f"_v{name}": globals()[name] for name in _VECTOR_OPS}
    space = dict(namespace, _prange=numba.prange, _vmax=maximum, _vwhere=where_positive, **ops)
    version = f"{zlib.crc32(Path(__file__).read_bytes()):08x}"
    for name in names + parallel:
        copy = pytypes.FunctionType(namespace[name].__code__, space, name)
        copy.__qualname__ = f"{name}_{tag}_{version}" if tag else f"{name}_{version}"
        space[name] = numba.njit(nogil=True, fastmath=True, parallel=name in parallel, cache=True)(copy)
    return {name: space[name] for name in names + parallel}


_VECTOR_OPS = ("load", "store", "splat", "broadcast", "zeros", "fma", "add", "sub", "mul", "div", "exp", "hsum")
