"""One ``inflect`` engine for the process, loaded without its import-time type-check instrumentation.

inflect decorates its methods with typeguard's ``@typechecked``, which rewrites and
recompiles every decorated function when the module is imported (about 3 s on our
machines, jaraco/inflect#212) and checks argument types on every call. The brains call
it with plain strings only, so the module is imported with a stand-in ``typeguard``
whose ``typechecked`` returns the function unchanged, and the real module (if any) is
put back right after. Results are cached: the same few nouns come up again and again.
"""

from __future__ import annotations

import functools
import sys
import types
from typing import Any

__all__ = ["article", "engine", "plural"]


def _identity(target: Any = None, **_: Any) -> Any:
    return target if target is not None else (lambda fn: fn)


@functools.cache
def engine() -> Any:
    """The process's inflect engine."""
    if "inflect" not in sys.modules:
        real = sys.modules.get("typeguard")
        stub = types.ModuleType("typeguard")
        stub.typechecked = _identity  # type: ignore[attr-defined]
        sys.modules["typeguard"] = stub
        try:
            import inflect  # noqa: F401
        finally:
            if real is not None:
                sys.modules["typeguard"] = real
            else:
                del sys.modules["typeguard"]
    import inflect

    return inflect.engine()


@functools.lru_cache(maxsize=4096)
def article(phrase: str) -> str:
    """``"order"`` -> ``"an order"``; ``"user"`` -> ``"a user"``; ``"hour"`` -> ``"an hour"``."""
    return str(engine().a(phrase))


@functools.lru_cache(maxsize=4096)
def plural(noun: str, count: int = 2) -> str:
    """``"category"`` -> ``"categories"``; ``count`` 1 gives the noun itself."""
    if count == 1:
        return noun
    words = noun.rsplit(" ", 1)
    last = str(engine().plural_noun(words[-1]))
    return f"{words[0]} {last}" if len(words) == 2 else last
