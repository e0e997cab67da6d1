"""Model names: ``provider:model``, e.g. ``anthropic:claude-sonnet-4-5``, ``openai:Qwen/Qwen3-8B``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.errors import ConfigError
from simulator.providers._registry import is_known, known_providers

__all__ = ["ModelSpec", "parse_model"]

_PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A provider name and the model id that provider knows (sent as is)."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def parse_model(text: str) -> ModelSpec:
    """Parse ``provider:model``; only the first ``:`` separates, so ``openai:llama3:8b`` works.

    Raises ConfigError for a malformed name or a provider nobody registered (the message
    lists the known ones).
    """
    provider, sep, model = text.strip().partition(":")
    if not sep or not provider or not model:
        raise ConfigError(
            f"model {text!r}: expected provider:model, e.g. anthropic:claude-sonnet-4-5 or openai:gpt-4.1"
        )
    if not _PROVIDER_NAME.fullmatch(provider):
        raise ConfigError(f"model {text!r}: provider name {provider!r} must be lowercase letters, digits, - or _")
    if not is_known(provider):
        known = ", ".join(known_providers())
        raise ConfigError(f"model {text!r}: unknown provider {provider!r}; known providers: {known}")
    return ModelSpec(provider=provider, model=model)
