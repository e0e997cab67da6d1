"""What a call cost: a price table in USD per million input and output tokens.

The built-in table covers common models at their published list prices (checked
against the providers' pages in 2026; prices change, so a user can override any entry
or add their own with a TOML or JSON file, see :func:`load_prices`). A model nobody
priced costs ``None``, never a guess. Dated snapshots (``gpt-4.1-2025-04-14``,
``claude-haiku-4-5-20251001``) are priced like their undated name.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

import msgspec

from schemas.errors import ConfigError
from simulator.providers._types import TokenUsage

__all__ = ["BUILTIN_PRICES", "ModelPrice", "PriceTable", "load_prices"]


class ModelPrice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """USD per million tokens."""

    input: float
    output: float

    def __post_init__(self) -> None:
        if self.input < 0 or self.output < 0:
            raise ValueError("prices must not be negative")


def _p(input_usd: float, output_usd: float) -> ModelPrice:
    return ModelPrice(input=input_usd, output=output_usd)


#: Keys are ``provider:model``. List prices, standard tier, no batch or cache discounts.
BUILTIN_PRICES: dict[str, ModelPrice] = {
    "anthropic:claude-fable-5-1": _p(10.0, 50.0),
    "anthropic:claude-opus-5-5": _p(4.0, 20.0),
    "anthropic:claude-opus-5": _p(5.0, 25.0),
    "anthropic:claude-sonnet-5-5": _p(2.0, 10.0),
    "anthropic:claude-sonnet-5": _p(2.0, 10.0),
    "anthropic:claude-opus-4-8": _p(5.0, 25.0),
    "anthropic:claude-opus-4-7": _p(5.0, 25.0),
    "anthropic:claude-opus-4-6": _p(5.0, 25.0),
    "anthropic:claude-sonnet-4-6": _p(3.0, 15.0),
    "anthropic:claude-opus-4-5": _p(5.0, 25.0),
    "anthropic:claude-sonnet-4-5": _p(3.0, 15.0),
    "anthropic:claude-haiku-4-5": _p(1.0, 5.0),
    "anthropic:claude-opus-4-1": _p(15.0, 75.0),
    "openai:gpt-5.4": _p(2.5, 15.0),
    "openai:gpt-5.4-mini": _p(0.75, 4.5),
    "openai:gpt-5.2": _p(1.75, 14.0),
    "openai:gpt-5": _p(1.25, 10.0),
    "openai:gpt-5-mini": _p(0.25, 2.0),
    "openai:gpt-5-nano": _p(0.05, 0.4),
    "openai:gpt-4.1": _p(2.0, 8.0),
    "openai:gpt-4.1-mini": _p(0.4, 1.6),
    "openai:gpt-4.1-nano": _p(0.1, 0.4),
    "openai:gpt-4o": _p(2.5, 10.0),
    "openai:gpt-4o-mini": _p(0.15, 0.6),
}

_DATE_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


class PriceTable:
    """Prices by model: user overrides first, then the built-in table.

    Override keys are ``provider:model`` or a bare ``model`` (any provider).
    """

    def __init__(self, overrides: Mapping[str, ModelPrice] | None = None, *, builtin: bool = True) -> None:
        self._overrides = dict(overrides or {})
        self._builtin = BUILTIN_PRICES if builtin else {}

    def price(self, provider: str, model: str) -> ModelPrice | None:
        """The price of ``provider:model``, or None when nobody priced it."""
        for name in (model, _DATE_SUFFIX.sub("", model)):
            for table, key in (
                (self._overrides, f"{provider}:{name}"),
                (self._overrides, name),
                (self._builtin, f"{provider}:{name}"),
            ):
                found = table.get(key)
                if found is not None:
                    return found
        return None

    def cost(self, provider: str, model: str, usage: TokenUsage) -> float | None:
        """USD for ``usage`` on ``provider:model``; None when the model has no price."""
        price = self.price(provider, model)
        if price is None:
            return None
        return (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1_000_000


def load_prices(path: str | Path) -> dict[str, ModelPrice]:
    """Read a price file: a table of model name to ``{input, output}`` USD per million tokens.

    TOML (``["openai:gpt-4.1"]`` / ``input = 2.0`` / ``output = 8.0``) or JSON
    (``{"openai:gpt-4.1": {"input": 2.0, "output": 8.0}}``), chosen by the suffix.
    Raises ConfigError naming the file and the entry that is wrong.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the price file: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode()) if path.suffix.lower() == ".toml" else json.loads(raw)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of model name to {{input, output}}")
    prices: dict[str, ModelPrice] = {}
    for name, entry in data.items():
        try:
            prices[name] = msgspec.convert(entry, ModelPrice)
        except msgspec.ValidationError as exc:
            raise ConfigError(
                f"{path}: {name!r}: {exc} (expected input and output in USD per million tokens)"
            ) from None
    return prices
