"""Where an evaluation's scenarios come from (``--scenarios SOURCE``).

- nothing: every built-in domain;
- ``retail`` or ``retail,clinic``: those built-in domains; scenarios are built from the
  seed (the same seed gives the same scenarios, whatever the agent);
- a scenarios file: JSON, either ``{"environments": [Environment...], "scenarios":
  [Scenario...]}`` or a plain list of scenarios whose environments are files
  ``environments/<id>.json`` next to it or built-in domains of that name;
- a generated dataset directory (``dialogsim generate --out DIR``, or an evaluation's
  ``records/``): its scenarios are replayed, each once.

Scenarios from a file or a dataset run as they are (their mode, seed and initial state);
``--mode`` applies to scenarios built from domains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from schemas import Environment, Mode, Scenario
from schemas.errors import ConfigError
from simulator.eval.scoring import split_trial_id
from toolservers.loader import load_environment

__all__ = ["DEFAULT_PER_DOMAIN", "ScenarioSource", "load_source", "resolve_source"]

#: Scenarios built per domain when no ``--limit`` is given.
DEFAULT_PER_DOMAIN = 2


@dataclass(frozen=True, slots=True)
class ScenarioSource:
    kind: Literal["domains", "file", "dataset"]
    domains: tuple[str, ...] = ()
    path: Path | None = None

    @property
    def label(self) -> str:
        """How the source is named in ``eval.json`` and the results."""
        if self.kind == "domains":
            return "domains:" + ",".join(self.domains)
        return f"{self.kind}:{self.path.resolve() if self.path else ''}"


def resolve_source(text: str | None) -> ScenarioSource:
    """Tell what ``--scenarios`` names; raises ConfigError for nothing known by that name."""
    from simulator.domains import domain_names

    known = domain_names()
    if not text:
        return ScenarioSource("domains", tuple(known))
    path = Path(text)
    if path.is_dir():
        if not (path / "dialogues.jsonl").is_file():
            raise ConfigError(f"--scenarios {text}: a directory, but not a dataset (no dialogues.jsonl in it)")
        return ScenarioSource("dataset", path=path)
    if path.is_file():
        return ScenarioSource("file", path=path)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ConfigError(
            f"--scenarios {text!r}: not a file, a dataset directory or a built-in domain (domains: {', '.join(known)})"
        )
    return ScenarioSource("domains", tuple(dict.fromkeys(names)))


def load_source(
    source: ScenarioSource, *, seed: int, mode: Mode = Mode.USER_ORIENTED, limit: int = 0
) -> tuple[list[Environment], list[Scenario], Path | None]:
    """The environments and base scenarios of ``source``, and the directory database paths are relative to.

    ``limit``: scenarios to build per the whole run from domains (0: ``DEFAULT_PER_DOMAIN``
    per domain); from a file or dataset, the first ``limit`` (0: all). Raises ConfigError.
    """
    if source.kind == "domains":
        from simulator.domains import load_domain
        from simulator.offline.scenarios import build_scenarios

        envs = [load_domain(name, seed=seed) for name in source.domains]
        count = limit or DEFAULT_PER_DOMAIN * len(envs)
        return envs, build_scenarios(envs, count=count, seed=seed, mode=mode), None
    assert source.path is not None
    if source.kind == "dataset":
        envs, scenarios = _from_dataset(source.path)
    else:
        envs, scenarios = _from_file(source.path, seed=seed)
    if not scenarios:
        raise ConfigError(f"--scenarios {source.path}: holds no scenarios")
    if limit:
        scenarios = scenarios[:limit]
    used = {s.environment_id for s in scenarios}
    return [e for e in envs if e.id in used], scenarios, source.path if source.path.is_dir() else source.path.parent


def _from_dataset(path: Path) -> tuple[list[Environment], list[Scenario]]:
    from simulator.run.dataset import ENVIRONMENTS_DIR, iter_records

    scenarios: dict[str, Scenario] = {}
    for _, record in iter_records(path):
        base, _ = split_trial_id(record.scenario.id)
        if base not in scenarios:
            scenarios[base] = msgspec.structs.replace(record.scenario, id=base)
    envs = _environment_files(path / ENVIRONMENTS_DIR, {s.environment_id for s in scenarios.values()}, seed=None)
    return envs, list(scenarios.values())


class _ScenarioFile(msgspec.Struct, forbid_unknown_fields=True):
    scenarios: list[Scenario]
    environments: list[Environment] = []


def _from_file(path: Path, *, seed: int) -> tuple[list[Environment], list[Scenario]]:
    try:
        raw: Any = msgspec.json.decode(path.read_bytes())
    except msgspec.DecodeError as exc:
        raise ConfigError(f"--scenarios {path}: not valid JSON: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"--scenarios {path}: cannot be read: {exc.strerror}") from None
    try:
        if isinstance(raw, list):
            parsed = _ScenarioFile(scenarios=msgspec.convert(raw, list[Scenario]))
        else:
            parsed = msgspec.convert(raw, _ScenarioFile)
    except msgspec.ValidationError as exc:
        raise ConfigError(
            f"--scenarios {path}: not a scenarios file ({exc}); expected a list of scenarios or "
            '{"environments": [...], "scenarios": [...]}'
        ) from None
    ids = [s.id for s in parsed.scenarios]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"--scenarios {path}: two scenarios are both called {dup!r}")
    given = {e.id: e for e in parsed.environments}
    missing = {s.environment_id for s in parsed.scenarios} - set(given)
    envs = list(given.values()) + _environment_files(path.parent / "environments", missing, seed=seed)
    return envs, parsed.scenarios


def _environment_files(directory: Path, wanted: set[str], *, seed: int | None) -> list[Environment]:
    """Environments by id from ``directory/<id>.json``, else (with a seed) the built-in domain."""
    from simulator.domains import domain_names, load_domain

    out: list[Environment] = []
    for env_id in sorted(wanted):
        file = directory / f"{env_id}.json"
        if file.is_file():
            out.append(load_environment(file))
        elif seed is not None and env_id in domain_names():
            out.append(load_domain(env_id, seed=seed))
        else:
            raise ConfigError(
                f"environment {env_id!r}: no {file} and no built-in domain of that name; "
                'put it in the scenarios file ("environments": [...]) or next to it'
            )
    return out
