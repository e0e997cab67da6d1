"""One small registry for everything dialogsim looks up by name.

Providers, agent and user brains, domain packs and export formats each keep a
:class:`Registry`. An entry is registered with the decorator (``@FORMATS.register("openai")``)
when its module is imported; built-in entries are named up front with the module that
registers them, so that module is imported only when the name is first looked up (an
OpenAI-only run never imports the Anthropic SDK). Third parties add entries through an
entry-point group: the entry point's name is the entry's name and its value either a
module that registers it, or an object (``package.module:thing``) registered as it is.

Registering a name twice with different values is an error, and so is a module other
than a built-in entry's own claiming that entry's name. Looking up an unknown name raises
ConfigError listing the known ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar, overload

from schemas.errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")
F = TypeVar("F")


class Registry(Generic[T]):
    """Entries of one kind (``"provider"``, ``"agent"``, ``"domain"``, ``"export format"``) by name.

    ``builtin`` maps a name to ``"module"`` (a module that registers the name when imported)
    or ``"module:attribute"`` (the attribute is the entry). ``group`` is the entry-point
    group third parties use, if any. ``adapt(name, obj)`` turns an object named by
    ``module:attribute`` (built in or from an entry point) into an entry.
    """

    def __init__(
        self,
        kind: str,
        *,
        builtin: dict[str, str] | None = None,
        group: str | None = None,
        adapt: Callable[[str, Any], T] | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self._adapt = adapt
        self._builtin = dict(builtin or {})
        self._lazy = dict(self._builtin)
        self._entries: dict[str, T] = {}
        self._owners: dict[str, str] = {}

    # ------------------------------------------------------------------ registering
    @overload
    def register(self, name: str) -> Callable[[F], F]: ...

    @overload
    def register(self, name: str, value: T, *, owner: str | None = None) -> T: ...

    def register(self, name: str, value: Any = None, *, owner: str | None = None) -> Any:
        """Register ``value`` under ``name``; without a value, a decorator that registers what it decorates.

        Raises ConfigError when ``name`` is taken by another value, or is a built-in name
        claimed from outside its own module.
        """
        if value is None:

            def decorate(thing: F) -> F:
                self._add(name, thing, getattr(thing, "__module__", None))
                return thing

            return decorate
        self._add(name, value, owner or getattr(value, "__module__", None))
        return value

    def _add(self, name: str, value: Any, owner: str | None) -> None:
        home = self._builtin.get(name, "").partition(":")[0]
        if home and owner is not None and owner != home:
            raise ConfigError(f"{self.kind} {name!r} is built in ({home}); {owner} cannot register it again")
        existing = self._entries.get(name)
        if existing is not None and existing is not value and existing != value:
            raise ConfigError(
                f"{self.kind} {name!r} registered twice: by {self._owners.get(name, '?')} and {owner or '?'}"
            )
        self._entries[name] = value
        self._owners[name] = owner or "?"

    def declare(self, name: str, target: str) -> None:
        """Name ``"module"`` or ``"module:attribute"`` as where ``name`` comes from, imported on first lookup.

        Raises ConfigError when ``name`` is already declared or registered otherwise.
        """
        if self._lazy.get(name, target) != target or (name in self._entries and name not in self._lazy):
            raise ConfigError(
                f"{self.kind} {name!r} is already registered to {self._lazy.get(name) or self._owners[name]}"
            )
        self._lazy[name] = target

    # ------------------------------------------------------------------ looking up
    def names(self) -> list[str]:
        """Every name that can be looked up, sorted: built in, registered and from entry points."""
        return sorted({*self._lazy, *self._entries, *self._entry_points()})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._lazy or name in self._entries or name in self._entry_points())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """The entry called ``name``, importing its module on first use.

        Raises ConfigError for an unknown name (listing the known ones), or for a module
        that was imported but registered nothing under that name.
        """
        if name in self._entries:
            return self._entries[name]
        target = self._lazy.get(name)
        if target is not None:
            module_name, _, attribute = target.partition(":")
            module = importlib.import_module(module_name)
            if attribute and name not in self._entries:
                self._add(name, self._adapted(name, getattr(module, attribute)), module_name)
        else:
            ep = self._entry_points().get(name)
            if ep is None:
                raise ConfigError(f"unknown {self.kind} {name!r}; expected one of: {', '.join(self.names()) or 'none'}")
            loaded = ep.load()
            if name not in self._entries and ep.attr:
                self._add(name, self._adapted(name, loaded), ep.module)
        if name not in self._entries:
            raise ConfigError(f"{self.kind} {name!r}: its module was imported but registered nothing of that name")
        return self._entries[name]

    def _adapted(self, name: str, obj: Any) -> Any:
        return self._adapt(name, obj) if self._adapt is not None else obj

    def _entry_points(self) -> dict[str, EntryPoint]:
        # Scanned when asked, not cached: names already known never get here.
        if self.group is None:
            return {}
        found: dict[str, EntryPoint] = {}
        for ep in entry_points(group=self.group):
            if ep.name in self._builtin:
                raise ConfigError(f"entry point {ep.value!r} ({self.group}) reuses the built-in name {ep.name!r}")
            if ep.name in found and found[ep.name].value != ep.value:
                raise ConfigError(
                    f"{self.kind} {ep.name!r} is offered by two entry points: {found[ep.name].value} and {ep.value}"
                )
            found[ep.name] = ep
        return found
