"""Provider settings: one value object per model, built at the command line's edge.

Environment variables are read only by :func:`settings_from_env`, which the CLI calls
with ``os.environ`` before any work starts; everything below it takes the finished
:class:`ProviderSettings`. The API key is held in a :class:`Secret` whose ``repr`` and
``str`` are masked, so it cannot leak through a log line, an exception or a record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from schemas.errors import ConfigError
from simulator.log import add_secret
from simulator.providers._registry import provider_info
from simulator.providers.cost import ModelPrice, load_prices
from simulator.providers.models import ModelSpec

__all__ = ["PLACEHOLDER_KEY", "ProviderSettings", "Secret", "settings_from_env"]

#: Sent to OpenAI-compatible local servers that check no key (vLLM, Ollama, llama.cpp).
PLACEHOLDER_KEY = "EMPTY"


class Secret:
    """A string that never shows itself: ``repr``/``str``/formatting print ``**********``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        add_secret(value)  # wherever it turns up (an SDK error echoing it), logs and records show it redacted

    def reveal(self) -> str:
        """The real value, for the one place that sends it (the SDK client)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        raise TypeError("a Secret is not pickled")


@dataclass(frozen=True, kw_only=True)
class ProviderSettings:
    """How to reach one provider and how hard to push it.

    ``timeout`` is the whole-request deadline in seconds. ``max_concurrency`` caps
    requests in flight for this provider and model; ``rpm`` / ``tpm`` are requests and
    tokens per minute (``None``: unlimited). ``max_retries`` counts retries after the
    first attempt, with exponential backoff from ``backoff_base`` up to ``backoff_max``
    seconds and full jitter, unless the server says how long to wait. ``cache_dir``
    turns the response cache on. ``prices`` override the built-in price table.

    A model served by several servers (a fleet) lists them all in ``base_urls``
    (``base_url`` is then the first); each gets its own SDK client, requests go to the
    one with the fewest in flight, and ``max_concurrency`` applies to each of them while
    ``rpm`` / ``tpm`` stay per model. An endpoint that fails ``endpoint_failures`` times
    in a row (connection errors, 5xx, timeouts) is taken out for ``endpoint_cooldown``
    seconds, then probed with one request; a failed probe doubles its time out, up to
    ``endpoint_cooldown_max`` (see :mod:`simulator.providers.fleet`).

    Raises ConfigError for values out of range.
    """

    api_key: Secret | None = None
    base_url: str | None = None
    base_urls: tuple[str, ...] = ()
    timeout: float = 120.0
    max_concurrency: int = 8
    rpm: float | None = None
    tpm: float | None = None
    max_retries: int = 4
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    cache_dir: Path | None = None
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    endpoint_failures: int = 3
    endpoint_cooldown: float = 10.0
    endpoint_cooldown_max: float = 300.0

    @property
    def endpoints(self) -> tuple[str | None, ...]:
        """Every base URL of the model, in the order given (``(None,)``: the provider's default)."""
        return self.base_urls or (self.base_url,)

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ConfigError(f"timeout: expected a positive number of seconds, got {self.timeout}")
        if self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency: expected at least 1, got {self.max_concurrency}")
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name}: expected a positive number per minute, got {value}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries: expected 0 or more, got {self.max_retries}")
        if self.backoff_base < 0 or self.backoff_max < self.backoff_base:
            raise ConfigError(
                f"backoff: expected 0 <= backoff_base <= backoff_max, got {self.backoff_base} and {self.backoff_max}"
            )
        if self.endpoint_failures < 1:
            raise ConfigError(f"endpoint_failures: expected at least 1, got {self.endpoint_failures}")
        if not 0 < self.endpoint_cooldown <= self.endpoint_cooldown_max:
            raise ConfigError(
                "endpoint cooldown: expected 0 < endpoint_cooldown <= endpoint_cooldown_max, got "
                f"{self.endpoint_cooldown} and {self.endpoint_cooldown_max}"
            )
        urls = tuple(self.base_urls)  # a list from a config file is fine too
        if urls:
            if self.base_url is not None and self.base_url != urls[0]:
                raise ConfigError(f"base URL {self.base_url!r}: give base_url or base_urls, not both")
            repeated = sorted({u for u in urls if urls.count(u) > 1})
            if repeated:
                raise ConfigError(f"base URL {repeated[0]!r} is given twice")
            object.__setattr__(self, "base_urls", urls)
            object.__setattr__(self, "base_url", urls[0])
        for url in self.endpoints:
            if url is not None:
                _check_url(url)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"base URL {url!r}: expected http(s)://host[:port][/path]")


def settings_from_env(
    model_spec: ModelSpec,
    env: Mapping[str, str],
    *,
    api_key: str | None = None,
    base_url: str | Sequence[str] | None = None,
    timeout: float | None = None,
    max_concurrency: int | None = None,
    rpm: float | None = None,
    tpm: float | None = None,
    max_retries: int | None = None,
    cache_dir: str | Path | None = None,
    price_file: str | Path | None = None,
    prices: Mapping[str, ModelPrice] | None = None,
) -> ProviderSettings:
    """Settings for ``model_spec`` from flags (``None``: not given) and environment variables.

    The key comes from ``api_key`` or the provider's variable (``ANTHROPIC_API_KEY``,
    ``OPENAI_API_KEY``), the base URL from ``base_url`` or ``ANTHROPIC_BASE_URL`` /
    ``OPENAI_BASE_URL``; several base URLs (``--base-url`` repeated) make a fleet. An
    OpenAI-compatible server at a custom base URL needs no key (``EMPTY`` is sent).
    Prices from ``price_file`` are applied, then ``prices``.

    Raises ConfigError, before any work starts, for a missing key, a bad base URL, an
    unreadable price file or a value out of range. The message names the variable to
    set, never a key.
    """
    info = provider_info(model_spec.provider)
    given = [base_url] if isinstance(base_url, str) else list(base_url or ())
    urls = [u for u in given if u]
    if not urls and info.base_url_env and env.get(info.base_url_env):
        urls = [env[info.base_url_env]]
    key = api_key or (env.get(info.key_env) if info.key_env else None) or None
    if key is None:
        official = (info.default_base_url or "").rstrip("/")
        custom_url = bool(urls) and all(u.rstrip("/") != official for u in urls)
        if info.keyless_base_url and custom_url:
            key = PLACEHOLDER_KEY
        elif info.key_env is not None:
            raise ConfigError(
                f"model {model_spec}: no API key; set {info.key_env} or pass --api-key"
                + (f" (or --base-url for a local {info.name}-compatible server)" if info.keyless_base_url else "")
            )
    merged: dict[str, ModelPrice] = {}
    if price_file is not None:
        merged.update(load_prices(price_file))
    merged.update(prices or {})
    default = ProviderSettings()
    return ProviderSettings(
        api_key=Secret(key) if key is not None else None,
        base_url=urls[0] if urls else None,
        base_urls=tuple(urls) if len(urls) > 1 else (),
        timeout=default.timeout if timeout is None else timeout,
        max_concurrency=default.max_concurrency if max_concurrency is None else max_concurrency,
        rpm=rpm,
        tpm=tpm,
        max_retries=default.max_retries if max_retries is None else max_retries,
        cache_dir=Path(cache_dir) if cache_dir is not None else None,
        prices=merged,
    )
