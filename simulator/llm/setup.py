"""The run-wide LLM setup: settings per model, one shared client per model, prompt overrides."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from schemas.errors import ConfigError, UsageError
from simulator.providers import ClientPool, LLMClient, ModelSpec, ProviderSettings, UsageMeter, parse_model

__all__ = ["PROMPT_ROLES", "LLMSetup", "current_setup", "use_setup"]

#: The roles that have a prompt file: ``simulator/prompts/<role>.md``.
PROMPT_ROLES = ("user", "agent", "task_generator", "environment_designer", "judge")


@dataclass(slots=True)
class LLMSetup:
    """Settings per model (built at the CLI edge), the client pool, and where prompts come from.

    ``prompts_dir`` overrides built-in prompts file by file: a ``user.md`` there replaces
    the built-in user prompt, the others stay.
    """

    settings: dict[str, ProviderSettings]
    pool: ClientPool = field(default_factory=ClientPool)
    prompts_dir: Path | None = None
    meter: UsageMeter = field(default_factory=UsageMeter)
    max_agent_steps: int = 12

    def client(self, model: str | ModelSpec) -> LLMClient:
        """The shared client of ``model``; raises ConfigError when no settings were made for it."""
        spec = parse_model(model) if isinstance(model, str) else model
        settings = self.settings.get(str(spec))
        if settings is None:
            raise ConfigError(f"model {spec} has no provider settings; name it with --model or a --*-model flag")
        return self.pool.get(spec, settings)

    def prompt(self, role: str) -> str:
        """The prompt template of ``role``: the override file if there is one, else the built-in."""
        if role not in PROMPT_ROLES:
            raise UsageError(f"no prompt for role {role!r}")
        if self.prompts_dir is not None:
            path = self.prompts_dir / f"{role}.md"
            if path.is_file():
                return path.read_text(encoding="utf-8")
        return resources.files("simulator.prompts").joinpath(f"{role}.md").read_text(encoding="utf-8")


_SETUP: contextvars.ContextVar[LLMSetup | None] = contextvars.ContextVar("dialogsim_llm_setup", default=None)


def current_setup() -> LLMSetup:
    """The installed setup; raises ConfigError when an LLM brain is used without one."""
    setup = _SETUP.get()
    if setup is None:
        raise ConfigError("an LLM brain needs provider settings; run it from the command line with --model")
    return setup


@contextmanager
def use_setup(setup: LLMSetup) -> Iterator[LLMSetup]:
    """Install ``setup`` for the code run inside (tasks started inside inherit it)."""
    token = _SETUP.set(setup)
    try:
        yield setup
    finally:
        _SETUP.reset(token)
