"""``python -m recstack.kernels.warm FAMILY [ARGS...]``: compile one kernel family into numba's disk cache.

Started in the background by `recstack.kernels.registry.when_compiled`; ``attention`` takes the layer's
fields, embedding size and heads, ``cin`` nothing. Exits 0 once the kernels are compiled and cached, 2 on
bad arguments.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


def _warmers() -> dict[str, tuple[int, Callable[..., None]]]:
    from recstack.kernels import attention, cin

    return {"attention": (3, attention.warm), "cin": (0, cin.warm)}


def main(argv: Sequence[str] | None = None) -> int:
    """Compile the family named by ``argv[0]`` for the integer arguments after it."""
    args = list(sys.argv[1:] if argv is None else argv)
    warmers = _warmers()
    if not args or args[0] not in warmers:
        print(f"usage: python -m recstack.kernels.warm {{{','.join(warmers)}}} [ints...]", file=sys.stderr)
        return 2
    arity, warm = warmers[args[0]]
    try:
        values = [int(a) for a in args[1:]]
    except ValueError:
        values = []
    if len(values) != arity or len(args) - 1 != arity:
        print(f"recstack.kernels.warm {args[0]}: expected {arity} integer arguments, got {args[1:]}", file=sys.stderr)
        return 2
    warm(*values)
    return 0


if __name__ == "__main__":
    sys.exit(main())
