"""A run over an external server: inspect it, plan its scenarios, run the dialogues.

``inspect_server`` starts one instance and reads its tool list before any work, so a
command that is not an MCP server or a server with no tools is a one-line error (exit 2).
``plan_run`` is the run's planner (``simulator.run.plan.Planner``): offline by walking the
read tools (``simulator.external.planner``), or with a task model
(``simulator.external.tasks``); what it planned is kept in ``DIR/plan/`` and reused when the
run is resumed, with what the probe did in ``DIR/plan/probe.json`` (its calls, the tools
it skipped because the server failed on them, and why). ``execute_external`` runs the
dialogues with the external connector.
"""

from __future__ import annotations

import json
import random
import shlex
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types

from schemas import DialogueRecord, Environment, Mode, Scenario, ServerSpec
from schemas.errors import ExternalServerError
from simulator.dialogue.runner import DialogueConfig, EventSink, run_dialogue
from simulator.external.connect import ExternalRun
from simulator.external.instance import Replaceable, list_all_tools, open_instance
from simulator.external.planner import Probe, build_scenarios, plan_templates, walk
from simulator.external.spec import STATE_TOKEN, ExternalSpec, environment_id
from simulator.log import get_logger
from simulator.run.config import RunConfig
from simulator.run.dataset import write_atomic
from simulator.run.execute import RunSummary, execute_run
from simulator.run.plan import PLAN_DIR, PreparedRun, _load_plan, _save_plan

__all__ = ["PROBE_FILE", "build_environment", "execute_external", "inspect_server", "plan_external", "plan_run"]

log = get_logger(__name__)

#: What the probe of the latest planning did, in ``DIR/plan/``.
PROBE_FILE = "probe.json"


async def inspect_server(spec: ExternalSpec, root: Path) -> tuple[list[types.Tool], str]:
    """The server's tools and name; raises ExternalServerError when it cannot be used."""
    async with open_instance(spec, root / "inspect") as instance:
        try:
            tools = await list_all_tools(instance.client, spec.connect_timeout_s)
        except TimeoutError:
            raise ExternalServerError(
                spec.flag, f"no answer to tools/list within {spec.connect_timeout_s:g} s"
            ) from None
        except Exception as exc:
            raise ExternalServerError(spec.flag, f"tools/list failed: {exc}") from None
        info = instance.client.server_info
        name = info.name if info is not None else ""
    if not tools:
        raise ExternalServerError(spec.flag, "the server lists no tools: there is nothing for an agent to use")
    return tools, name


def build_environment(
    spec: ExternalSpec,
    tools: Sequence[types.Tool],
    server_name: str,
    volatile_paths: Sequence[str] = (),
    *,
    user_spec: ExternalSpec | None = None,
    user_tools: Sequence[types.Tool] = (),
) -> Environment:
    """The environment snapshot written to the dataset's ``environments/``."""
    env_id = environment_id(spec, server_name)
    shown = spec.shown_state
    command = spec.command.replace(STATE_TOKEN, shown) if spec.command and shown else spec.command
    what = f"the MCP server `{command}`" if command else f"the MCP server at {spec.url}"
    description = spec.description or f"{server_name or env_id}: the tools of {what}"
    if spec.state_kind == "dir":
        description += (
            f". The working copy of this conversation is the directory {shown}: "
            "pass that path wherever a tool asks for a path or a repository"
        )
    elif spec.state_kind == "file":
        description += f". The data file of this conversation is {shown}"
    server = ServerSpec(
        command=shlex.split(spec.command) if spec.command is not None else None,
        url=spec.url,
        state=str(spec.state.resolve()) if spec.state is not None else None,
        state_kind="dir" if spec.state_kind == "dir" else ("file" if spec.state_kind == "file" else None),
        shared_state=spec.shared_state,
        env_names=sorted(spec.env),
        header_names=sorted(spec.headers),
        tools=[t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools],
        volatile_paths=sorted(volatile_paths),
        server_name=server_name,
        user_command=shlex.split(user_spec.command) if user_spec is not None and user_spec.command else None,
        user_tools=[t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in user_tools],
    )
    return Environment(id=env_id, domain=env_id, description=description, kind="external", server=server)


async def plan_external(
    spec: ExternalSpec,
    *,
    count: int,
    seed: int,
    mode: Mode,
    start: int = 0,
    tasks_model: str | None = None,
    user_spec: ExternalSpec | None = None,
    on_probe: Callable[[Probe], None] | None = None,
) -> tuple[Environment, list[Scenario]]:
    """Inspect the server (and the user's, if any) and plan ``count`` scenarios (ids from ``start``) over it.

    ``on_probe`` is given what the probe did once planning is over. Raises
    ExternalServerError when the server cannot be used, or fails and cannot be started again.
    """
    root = Path(tempfile.mkdtemp(prefix="dialogsim-plan-"))
    try:
        tools, name = await inspect_server(spec, root)
        user_tools: list[types.Tool] = []
        if user_spec is not None:
            user_tools, _ = await inspect_server(user_spec, root / "user")
            clash = sorted({t.name for t in tools} & {t.name for t in user_tools})
            if clash:
                raise ExternalServerError(
                    "--user-server", f"its tools must have other names than the agent's; both have {', '.join(clash)}"
                )
        async with Replaceable(spec, root / "probe") as probing:
            probe = await walk(probing, tools, limit_s=spec.call_timeout_s)
        environment = build_environment(
            spec, tools, name, sorted(probe.volatile_paths), user_spec=user_spec, user_tools=user_tools
        )
        if tasks_model is not None:
            from simulator.external.tasks import plan_with_model

            scenarios = await plan_with_model(
                spec,
                environment,
                tools,
                probe,
                model=tasks_model,
                count=count,
                seed=seed,
                mode=mode,
                start=start,
                root=root,
                user_spec=user_spec,
                user_tools=user_tools,
            )
        else:
            rng = random.Random(f"{seed}:{environment.id}:templates")
            async with Replaceable(spec, root / "check") as checking:
                templates = await plan_templates(checking, probe, limit_s=spec.call_timeout_s, rng=rng)
            scenarios = build_scenarios(environment, templates, tools, count=count, seed=seed, mode=mode, start=start)
        if on_probe is not None:
            on_probe(probe)
        return environment, scenarios
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def plan_run(
    config: RunConfig,
    *,
    spec: ExternalSpec,
    tasks_model: str | None = None,
    setup: Any = None,
    user_spec: ExternalSpec | None = None,
) -> tuple[list[Environment], list[Scenario]]:
    """The run's planner: scenarios over the server, planned once and then read from DIR/plan/."""
    plan_dir: Path = config.out_dir / PLAN_DIR
    settings = {
        "external": spec.describe(),
        "tasks_model": tasks_model,
        **({"user_server": user_spec.command} if user_spec is not None else {}),
    }
    stored = _load_plan(plan_dir)

    async def work() -> tuple[list[Environment], list[Scenario]]:
        planned = 0
        scenarios: list[Scenario] = []
        environments: list[Environment] = []
        if stored is not None:
            meta, environments, scenarios = stored
            if meta["settings"] != settings:
                from schemas.errors import ConfigError

                raise ConfigError(f"{config.out_dir}: was planned over another server or settings; use a new --out")
            planned = int(meta["planned"])
        if config.dialogues > planned or not environments:
            probes: list[Probe] = []
            environment, more = await plan_external(
                spec,
                count=max(0, config.dialogues - planned),
                seed=config.seed,
                mode=config.mode,
                start=planned,
                tasks_model=tasks_model,
                user_spec=user_spec,
                on_probe=probes.append,
            )
            environments = environments or [environment]
            scenarios += more
            planned = max(planned, config.dialogues)
            _save_plan(plan_dir, settings, environments, scenarios, planned)
            for probe in probes:  # after the plan: a new plan directory appears whole
                text = json.dumps(probe.report(), indent=2, ensure_ascii=False, default=str) + "\n"
                write_atomic(plan_dir / PROBE_FILE, text.encode())
        else:
            # The server must still be there and list tools, before any dialogue starts.
            root = Path(tempfile.mkdtemp(prefix="dialogsim-inspect-"))
            try:
                await inspect_server(spec, root)
            finally:
                import shutil

                shutil.rmtree(root, ignore_errors=True)
        return environments, scenarios[: config.dialogues]

    async def with_setup() -> tuple[list[Environment], list[Scenario]]:
        if setup is None:
            return await work()
        try:
            return await work()
        finally:
            await setup.pool.aclose()

    if setup is not None:
        from simulator.llm.setup import use_setup

        with use_setup(setup):
            return anyio.run(with_setup)
    return anyio.run(with_setup)


async def execute_external(
    prepared: PreparedRun,
    spec: ExternalSpec,
    *,
    progress: bool = True,
    state_root: Path | None = None,
    user_spec: ExternalSpec | None = None,
    stop_on_signals: bool = False,
) -> RunSummary:
    """Run the pending dialogues of ``prepared`` over the external server (and the user's, if any)."""
    (environment,) = prepared.environments.values()
    if spec.shared_state:
        log.warning("external_shared_state", url=spec.url, note="every dialogue shares one server state")
    async with ExternalRun(spec, environment, root=state_root, user_spec=user_spec) as external:
        connector = external.connector()

        async def dialogue_fn(
            scenario: Scenario, environment: Environment, config: DialogueConfig, *, on_event: EventSink | None = None
        ) -> DialogueRecord:
            return await run_dialogue(scenario, environment, config, on_event=on_event, connect=connector)

        return await execute_run(prepared, dialogue_fn=dialogue_fn, progress=progress, stop_on_signals=stop_on_signals)
