"""Providers by name: a decorator registry that imports lazily, plus entry points.

Built-in providers are modules imported the first time their name is looked up, so an
OpenAI-only run never imports the Anthropic SDK. Third parties add providers through
the ``dialogsim.providers`` entry point group: the entry point's name is the provider
name and its value a module that registers with :func:`provider` (or a factory, which
is registered with the default metadata). Registering a name twice is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from simulator.registry import Registry

if TYPE_CHECKING:
    from simulator.providers._types import Request, Response
    from simulator.providers.settings import ProviderSettings

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROVIDERS",
    "Provider",
    "ProviderFactory",
    "ProviderInfo",
    "is_known",
    "known_providers",
    "provider",
    "provider_info",
]

ENTRY_POINT_GROUP = "dialogsim.providers"

_BUILTIN: dict[str, str] = {
    "anthropic": "simulator.providers.anthropic",
    "openai": "simulator.providers.openai",
}


class Provider(Protocol):
    """One provider bound to its settings: sends one request, one HTTP attempt, no retries.

    ``send`` raises :class:`~simulator.providers.ProviderError` subclasses only; the
    client around it owns limits, retries, timeouts, the cache and accounting.
    """

    name: str

    async def send(self, request: Request) -> Response: ...

    async def aclose(self) -> None: ...


ProviderFactory = Callable[["ProviderSettings"], Provider]
F = TypeVar("F", bound=ProviderFactory)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What the command line needs to know about a provider before any call.

    ``key_env`` / ``base_url_env`` are the environment variables read at the CLI edge;
    ``keyless_base_url`` means a custom base URL (a local server) needs no key.
    """

    name: str
    factory: ProviderFactory
    key_env: str | None = None
    base_url_env: str | None = None
    default_base_url: str | None = None
    keyless_base_url: bool = False


def _as_info(name: str, obj: Any) -> ProviderInfo:
    """An entry point may name a factory: it is registered with the default metadata."""
    return obj if isinstance(obj, ProviderInfo) else ProviderInfo(name=name, factory=obj)


PROVIDERS: Registry[ProviderInfo] = Registry("provider", builtin=_BUILTIN, group=ENTRY_POINT_GROUP, adapt=_as_info)


def provider(
    name: str,
    *,
    key_env: str | None = None,
    base_url_env: str | None = None,
    default_base_url: str | None = None,
    keyless_base_url: bool = False,
) -> Callable[[F], F]:
    """Register a provider factory under ``name``.

    Raises ConfigError when the name is taken by another factory (a built-in name can
    only be registered by its own module).
    """

    def decorate(factory: F) -> F:
        info = ProviderInfo(
            name=name,
            factory=factory,
            key_env=key_env,
            base_url_env=base_url_env,
            default_base_url=default_base_url,
            keyless_base_url=keyless_base_url,
        )
        PROVIDERS.register(name, info, owner=getattr(factory, "__module__", None))
        return factory

    return decorate


def is_known(name: str) -> bool:
    """Whether ``name`` can be used; built-in and registered names are answered without a scan."""
    return name in PROVIDERS


def known_providers() -> list[str]:
    """Every provider name that can be used, sorted (built-in, registered and from entry points)."""
    return PROVIDERS.names()


def provider_info(name: str) -> ProviderInfo:
    """Look a provider up by name, importing its module on first use.

    Raises ConfigError for an unknown name (listing the known ones) or a broken plugin.
    An entry point may name a module that registers the provider, or a factory, which is
    registered with the default metadata.
    """
    return PROVIDERS.get(name)
