"""Model flags shared by the commands that can use LLM brains (``generate``, ``eval``).

This is the edge where API keys and base URLs are read: from the flags, else from the
usual environment variables. Nothing past here reads the environment.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulator.llm import LLMSetup

__all__ = [
    "RoleModels",
    "add_connection_arguments",
    "add_model_arguments",
    "llm_setup",
    "request_cap",
    "role_models",
]

ROLES = ("user", "agent")

#: Roles whose own help differs from "the ROLE's model".
_ROLE_HELP = {
    "tasks": "write each dialogue's tasks with this model instead of the offline planner (not set by --model)",
    "env": "the model that designs the environments of --design (default: --model)",
}


def add_model_arguments(parser: argparse.ArgumentParser, *, roles: tuple[str, ...] = ROLES) -> None:
    """``--model``, ``--ROLE-model`` for each role, and the connection flags."""
    g = parser.add_argument_group(
        "models (default: the offline brains; keys come from ANTHROPIC_API_KEY / OPENAI_API_KEY)"
    )
    g.add_argument(
        "--model",
        metavar="PROVIDER:MODEL",
        help="a model for every role, e.g. anthropic:claude-sonnet-4-5, openai:gpt-4.1, openai:Qwen/Qwen3-8B",
    )
    for role in roles:
        g.add_argument(
            f"--{role}-model",
            metavar="PROVIDER:MODEL",
            help=_ROLE_HELP.get(role, f"the {role}'s model (overrides --model); 'offline' keeps the offline brain"),
        )
    _connection_arguments(g)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The connection flags alone, for commands whose brain specs name their models themselves."""
    g = parser.add_argument_group(
        "model connection (for PROVIDER:MODEL specs; keys come from ANTHROPIC_API_KEY / OPENAI_API_KEY)"
    )
    _connection_arguments(g)


def _connection_arguments(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--base-url",
        action="append",
        metavar="URL",
        help=(
            "an OpenAI-compatible server (vLLM, Ollama, ...) or another API endpoint; repeat for a fleet of "
            "servers of the same model (each request goes to the one with the fewest in flight)"
        ),
    )
    g.add_argument("--api-key", metavar="KEY", help="the API key (default: from the provider's environment variable)")
    g.add_argument("--request-timeout", type=float, metavar="S", help="seconds per model request")
    g.add_argument(
        "--max-requests",
        type=int,
        metavar="N",
        help="requests in flight per model endpoint (default: --concurrency, one per dialogue at a time)",
    )
    g.add_argument("--rpm", type=float, help="requests per minute per model")
    g.add_argument("--tpm", type=float, help="tokens per minute per model")
    g.add_argument("--cache-dir", type=Path, metavar="DIR", help="reuse identical model responses from this directory")
    g.add_argument("--price-file", type=Path, metavar="FILE", help="override model prices (USD per million tokens)")
    g.add_argument("--prompts-dir", type=Path, metavar="DIR", help="override the prompts (user.md, agent.md, ...)")


@dataclass(frozen=True, slots=True)
class RoleModels:
    """The brain spec of each role, and the setup LLM brains need (None when all are offline)."""

    specs: dict[str, str]
    setup: LLMSetup | None


def role_models(
    args: argparse.Namespace,
    *,
    roles: tuple[str, ...] = ROLES,
    env: Mapping[str, str] | None = None,
    explicit_only: tuple[str, ...] = (),
) -> RoleModels:
    """Resolve the model flags; raises ConfigError for an unknown provider or a missing key.

    Roles in ``explicit_only`` take a model only from their own ``--ROLE-model`` flag,
    not from ``--model``.
    """
    environ = os.environ if env is None else env
    specs: dict[str, str] = {}
    for role in roles:
        fallback = None if role in explicit_only else args.model
        chosen = getattr(args, f"{role}_model", None) or fallback or "offline"
        specs[role] = chosen
    return RoleModels(specs, llm_setup(specs.values(), args, env=environ))


def llm_setup(
    specs: Iterable[str], args: argparse.Namespace, *, env: Mapping[str, str] | None = None
) -> LLMSetup | None:
    """The setup for the ``provider:model`` specs among ``specs`` (None when there are none).

    Raises ConfigError for a missing key or a bad setting, before any work starts.
    """
    from simulator.providers import known_providers

    environ = os.environ if env is None else env
    providers = set(known_providers())
    models = sorted({s for s in specs if s.partition(":")[0] in providers})
    if not models:
        return None
    from simulator.llm import LLMSetup
    from simulator.providers import parse_model, settings_from_env

    settings = {}
    for model in models:
        spec = parse_model(model)
        settings[str(spec)] = settings_from_env(
            spec,
            environ,
            api_key=args.api_key,
            base_url=args.base_url,
            timeout=args.request_timeout,
            # Unless capped, every running dialogue may have its request in flight.
            max_concurrency=args.max_requests if args.max_requests is not None else getattr(args, "concurrency", None),
            rpm=args.rpm,
            tpm=args.tpm,
            cache_dir=args.cache_dir,
            price_file=args.price_file,
        )
    return LLMSetup(settings=settings, prompts_dir=args.prompts_dir)


def request_cap(setup: LLMSetup | None, concurrency: int) -> int | None:
    """The lowest per-model cap on requests in flight when it is below ``concurrency`` (else None)."""
    if setup is None or not setup.settings:
        return None
    lowest = min(s.max_concurrency for s in setup.settings.values())
    return lowest if lowest < concurrency else None
