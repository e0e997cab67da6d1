"""Running a run's dialogues on Ray: workers anywhere, the dataset written by the driver alone.

The driver (the process that runs ``dialogsim generate`` or ``eval``) plans the run,
then starts ``workers`` Ray actors. Each actor runs its own event loop with up to
``concurrency`` dialogues at a time; the driver sends every actor one scenario per free
slot (see below) and gets back the finished record (msgspec JSON), the tool calls
seen and the worker's log lines. The driver alone appends records to
``dialogues.jsonl``, through the same sink as a run in one process, so a ``kill -9`` of
the driver and a resume behave exactly as without Ray.

Scenarios are built as slots free up, never the whole plan up front. A plan that is small
to send whatever its size (``ScenarioPlan.portable``: the offline plan, built from the
seed and the environments) goes to every worker once, and the driver sends only the
scenario's index: the worker builds it (milliseconds of CPU each that the driver does not
spend). Any other plan (a stored model plan, a branch) is built on the driver and each
scenario sent msgpack-encoded.

Faults are Ray's to detect: an actor whose process dies surfaces as ``RayActorError``
on every call in flight. The driver keeps the scenario ids in flight per actor; those of
a dead actor go back to the front of the queue, to whichever actor has a free slot next,
and the dead actor is replaced by a new one (up to ``max_restarts`` times per worker).
A scenario is never written twice: it is written when its record arrives, and sent again
only when its call failed, i.e. no record came back.

Safe by default. A local instance started here (no ``address``) binds every service to
127.0.0.1: its node address, the GCS, the raylet and object manager, each worker's RPC
server, the runtime-env agent. Ray resolves a loopback node address to the machine's
network address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (read when ``ray`` is
imported), so that is set, together with ``RAY_USAGE_STATS_ENABLED=0`` and token
authentication (``RAY_AUTH_MODE=token``); the dashboard is off. After starting, the
node address is checked and a non-loopback one refused. Joining a cluster
(``address``) is the user's explicit choice.

Secrets. A worker needs the provider settings of the models its dialogues use (agent,
user, judge; never the planners'). They are sent as one small constructor argument of
the actor, inlined in Ray's actor-creation message (token-authenticated RPC, TLS when
the cluster enables it), never through the object store, a runtime environment or a
log; in the worker the keys are registered with the log redactor before anything runs.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import msgspec
import structlog

from schemas import DialogueRecord, Environment, Scenario
from schemas.errors import ConfigError, DialogsimError
from simulator.dialogue.runner import DialogueConfig
from simulator.log import add_secret, bind, get_logger, redact
from simulator.run.execute import DialogueFactory, DialogueFn, RecordSink, Work, _run_one, build_checked
from simulator.run.plan import ScenarioPlan
from simulator.run.progress import RunStats

__all__ = [
    "LOOPBACK_ENV",
    "ExecutorError",
    "RayExecutor",
    "ray_available",
    "require_ray",
]

log = get_logger(__name__)

#: What makes a Ray instance started here keep to this machine (set before ``import ray``).
LOOPBACK_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # else Ray turns 127.0.0.1 into the machine's address
    "RAY_USAGE_STATS_ENABLED": "0",
}
_INSTALL_HINT = "--executor ray needs Ray: pip install 'dialogsim[ray]'"
#: How many times the driver replaces a worker whose actor died before giving that worker up.
_MAX_RESTARTS = 3
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class ExecutorError(DialogsimError):
    """The run's workers could not do its work (all died, or one failed outside any dialogue).

    What was written stays written: the same command resumes the run.
    """

    code = "executor"


def ray_available() -> bool:
    """Whether the ``ray`` package is installed (without importing it)."""
    return importlib.util.find_spec("ray") is not None


def require_ray() -> None:
    """Raise ConfigError (one line, naming the extra) when Ray is not installed."""
    if "ray" in sys.modules and sys.modules["ray"] is None:  # blocked on purpose (tests)
        raise ConfigError(_INSTALL_HINT)
    if not ray_available():
        raise ConfigError(_INSTALL_HINT)


def _is_loopback_address(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _import_ray(*, loopback: bool) -> ModuleType:
    """``import ray``, with the loopback settings in force for a local or loopback cluster."""
    require_ray()
    if loopback:
        os.environ.update(LOOPBACK_ENV)
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    if loopback and "ray._private.ray_constants" in sys.modules:
        # Imported before the variable was set (by the calling program): the same switch.
        constants = sys.modules["ray._private.ray_constants"]
        if hasattr(constants, "ENABLE_RAY_CLUSTER"):
            setattr(constants, "ENABLE_RAY_CLUSTER", False)  # noqa: B010
    return ray


# --------------------------------------------------------------------------- what a worker gets


class _Spec(msgspec.Struct, frozen=True):
    """Everything a worker needs but its secrets, sent once to all workers (``ray.put``)."""

    environments: list[Environment]
    dialogue: dict[str, Any]
    prompts: dict[str, str]
    max_agent_steps: int


class _Secrets(msgspec.Struct, frozen=True):
    """Provider settings per model, keys included: one small constructor argument per actor."""

    models: dict[str, bytes]


def _enc(obj: Any) -> Any:
    from simulator.providers import Secret

    if isinstance(obj, Secret):
        return obj.reveal()
    if isinstance(obj, Path):
        return str(obj)
    raise NotImplementedError(f"cannot send {type(obj).__name__} to a worker")


def _dec(kind: type, obj: Any) -> Any:
    from simulator.providers import Secret

    if kind is Secret:
        return Secret(obj)
    if kind is Path:
        return Path(obj)
    raise NotImplementedError(f"cannot read {kind.__name__} from the driver")


def _worker_models(config: DialogueConfig) -> list[str]:
    """The ``provider:model`` specs the dialogues use (agent, user, judge), normalised."""
    from simulator.providers import known_providers, parse_model

    providers = set(known_providers())
    specs = {config.agent, config.user, config.judge}
    return sorted({str(parse_model(s)) for s in specs if s.partition(":")[0] in providers})


def _llm_parts(config: DialogueConfig, workers: int) -> tuple[_Secrets, dict[str, str], int]:
    """What the workers need of the installed LLM setup: settings of their models, prompt texts.

    Requests and tokens per minute are limits of the provider account, so each of the
    ``workers`` gets its share; in-flight caps stay per worker process.
    """
    import dataclasses

    from simulator.llm.setup import PROMPT_ROLES, current_setup

    models = _worker_models(config)
    if not models:
        return _Secrets(models={}), {}, 12
    setup = current_setup()
    shipped: dict[str, bytes] = {}
    for model in models:
        settings = setup.settings.get(model)
        if settings is None:
            continue  # the worker's setup raises the usual ConfigError when a brain asks for it
        settings = dataclasses.replace(
            settings,
            rpm=settings.rpm / workers if settings.rpm is not None else None,
            tpm=settings.tpm / workers if settings.tpm is not None else None,
        )
        shipped[model] = msgspec.json.encode(settings, enc_hook=_enc)
    prompts = {role: setup.prompt(role) for role in PROMPT_ROLES}
    return _Secrets(models=shipped), prompts, setup.max_agent_steps


# --------------------------------------------------------------------------- the worker (a Ray actor)


class _LogCapture(logging.Handler):
    """Keeps the worker's ``dialogsim`` log events (redacted) for the driver's ``run.log``."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.entries: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.msg, dict):  # a structlog event, through the redacting chain already
            entry = dict(record.msg)
        else:  # a plain ``logging`` record: add the bound context (the dialogue id) as the chain would
            context = structlog.contextvars.get_contextvars()
            entry = dict(redact(None, "", {**context, "event": record.getMessage()}))
        entry.setdefault("level", record.levelname.lower())
        entry.setdefault("logger", record.name)
        self.entries.append(entry)

    def drain(self) -> bytes:
        entries, self.entries = self.entries, []
        return msgspec.json.encode(entries, enc_hook=str) if entries else b""


class DialogueWorker:
    """One Ray worker: its own event loop, running the dialogues the driver sends it.

    ``run`` takes one encoded scenario, or None and the scenario's index into the run's
    plan (``plan``, sent once when it is portable), and returns ``(record JSON, tool
    calls, tool errors, log lines)``. The dialogue function (``dialogues``) is opened once, by a
    long-lived task of the actor's loop, and every dialogue runs as a task under it.
    """

    def __init__(
        self, spec: bytes, secrets: bytes, dialogues: DialogueFactory, plan: ScenarioPlan | None = None
    ) -> None:
        decoded = msgspec.msgpack.decode(spec, type=_Spec)
        self._environments = {env.id: env for env in decoded.environments}
        self._plan = plan
        self._config = DialogueConfig(**decoded.dialogue)
        self._dialogues = dialogues
        self._setup = self._llm_setup(msgspec.msgpack.decode(secrets, type=_Secrets), decoded)
        self._scenario = msgspec.msgpack.Decoder(Scenario)
        self._capture = _LogCapture()
        root = logging.getLogger("dialogsim")
        root.addHandler(self._capture)
        root.setLevel(logging.INFO)
        self._inbox: asyncio.Queue[tuple[Scenario, asyncio.Future[tuple[bytes, int, int, bytes]]] | None] | None = None
        self._server: asyncio.Task[None] | None = None
        self._opened: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._tallies: list[Any] = []

    @staticmethod
    def _llm_setup(secrets: _Secrets, spec: _Spec) -> Any:
        if not secrets.models:
            return None
        from simulator.llm.setup import LLMSetup
        from simulator.providers import ProviderSettings

        settings = {
            model: msgspec.json.decode(raw, type=ProviderSettings, dec_hook=_dec)
            for model, raw in secrets.models.items()
        }
        for s in settings.values():
            if s.api_key is not None:
                add_secret(s.api_key.reveal())
        prompts_dir = Path(tempfile.mkdtemp(prefix="dialogsim-prompts-"))
        for role, text in spec.prompts.items():
            (prompts_dir / f"{role}.md").write_text(text, encoding="utf-8")
        return LLMSetup(settings=settings, prompts_dir=prompts_dir, max_agent_steps=spec.max_agent_steps)

    async def _start(self) -> None:
        if self._server is None:
            self._inbox = asyncio.Queue()
            self._opened = asyncio.Event()
            self._server = asyncio.ensure_future(self._serve())
        assert self._opened is not None
        await self._opened.wait()
        if self._failure is not None:
            raise ExecutorError(f"the worker could not start: {self._failure!r}") from self._failure

    async def _serve(self) -> None:
        assert self._inbox is not None and self._opened is not None
        inbox = self._inbox
        try:
            async with AsyncExitStack() as stack:
                if self._setup is not None:
                    from simulator.llm.setup import use_setup

                    stack.enter_context(use_setup(self._setup))
                    stack.push_async_callback(self._setup.pool.aclose)
                    stack.callback(self._keep_tallies)  # runs before the clients are closed
                dialogue_fn = await stack.enter_async_context(self._dialogues(list(self._environments.values()), None))
                async with anyio.create_task_group() as tg:
                    self._opened.set()
                    while (job := await inbox.get()) is not None:
                        tg.start_soon(self._one, dialogue_fn, *job)
        except BaseException as exc:
            self._failure = exc
            raise
        finally:
            self._opened.set()
            while not inbox.empty():
                job = inbox.get_nowait()
                if job is not None and not job[1].done():
                    job[1].set_exception(ExecutorError(f"the worker stopped: {self._failure!r}"))

    async def _one(
        self,
        dialogue_fn: DialogueFn,
        scenario: Scenario,
        done: asyncio.Future[tuple[bytes, int, int, bytes]],
    ) -> None:
        stats = RunStats(total=1)
        try:
            with bind(dialogue_id=scenario.id):
                env = self._environments[scenario.environment_id]
                record = await _run_one(scenario, env, self._config, dialogue_fn, stats, _NoDisplay())
            result = (msgspec.json.encode(record), stats.tool_calls, stats.tool_errors, self._capture.drain())
        except BaseException as exc:
            if not done.done():
                done.set_exception(exc)
            raise
        if not done.done():
            done.set_result(result)

    def _keep_tallies(self) -> None:
        self._tallies = self._setup.pool.endpoint_tallies()

    async def ready(self) -> int:
        """Open the dialogue function (once) and return this worker's process id."""
        await self._start()
        return os.getpid()

    async def run(self, scenario: bytes | None, index: int) -> tuple[bytes, int, int, bytes]:
        await self._start()
        assert self._inbox is not None
        if scenario is not None:
            built = self._scenario.decode(scenario)
        elif self._plan is not None:
            built = build_checked(self._plan, index, self._environments)
        else:
            raise ExecutorError("the driver sent a scenario index, but this worker has no plan")
        done: asyncio.Future[tuple[bytes, int, int, bytes]] = asyncio.get_running_loop().create_future()
        await self._inbox.put((built, done))
        return await done

    async def close(self) -> tuple[list[Any], bytes]:
        """Let the dialogues in hand finish, close the dialogue function and the model clients.

        Returns the model endpoints' figures (``EndpointTally``, pickled by Ray) for the
        run's summary, and the log lines written since the last dialogue.
        """
        if self._server is not None and self._inbox is not None:
            await self._inbox.put(None)
            await asyncio.gather(self._server, return_exceptions=True)
        if self._setup is not None and self._setup.prompts_dir is not None:
            shutil.rmtree(self._setup.prompts_dir, ignore_errors=True)
        return self._tallies, self._capture.drain()


class _NoDisplay:
    def update(self) -> None:
        pass


# --------------------------------------------------------------------------- the driver


@dataclass(frozen=True)
class _Job:
    """One scenario to run: its index into the plan, its id, and the scenario itself when the
    driver built it (None: the worker builds it from its copy of the plan)."""

    index: int
    id: str
    scenario: Scenario | None = None


class _Dispatch:
    """The driver's queue: scenarios lost with a worker first, then the run's own, lazily."""

    def __init__(self, jobs: Iterator[_Job]) -> None:
        self._source = jobs
        self._again: deque[_Job] = deque()
        self._exhausted = False
        self.in_flight = 0
        self._changed = anyio.Event()
        self._on_finished: list[Callable[[], None]] = []
        self.finished = False

    def _signal(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()
        if self.in_flight == 0 and not self._again and self._exhausted and not self.finished:
            self.finished = True
            for callback in self._on_finished:
                callback()

    def when_finished(self, callback: Callable[[], None]) -> None:
        self._on_finished.append(callback)

    async def take(self) -> _Job | None:
        """The next scenario to run, or None once every scenario has its record."""
        while True:
            job = self._again.popleft() if self._again else None
            if job is None and not self._exhausted:
                job = next(self._source, None)
                if job is None:
                    self._exhausted = True
                    self._signal()
            if job is not None:
                self.in_flight += 1
                return job
            if self.finished:
                return None
            changed = self._changed
            await changed.wait()

    def done(self) -> None:
        self.in_flight -= 1
        self._signal()

    def lost(self, job: _Job) -> None:
        self.in_flight -= 1
        self._again.append(job)
        self._signal()

    @property
    def remaining(self) -> int:
        """Scenarios known to be left (those not yet drawn from the source are not counted)."""
        return len(self._again) + self.in_flight

    @property
    def exhausted(self) -> bool:
        return self._exhausted


@dataclass(eq=False)
class _Actor:
    index: int
    handle: Any
    pid: int = 0
    #: Scenario ids sent to this actor and not yet answered.
    in_flight: set[str] = field(default_factory=set)
    #: Set by the first of its slots to see it die.
    dead: bool = False


class RayExecutor:
    """Run the dialogues on Ray actors (see the module's docstring).

    ``address``: a cluster to join (``ray.init(address=...)``, e.g. ``auto`` or
    ``HOST:6379``); None starts a local instance on loopback with ``num_cpus`` (default:
    the machine's cores). ``workers``: actors to start (default: the cluster's CPUs).
    Use as a context manager to start or join the cluster before the run (``start``),
    else ``run`` does it and stops what it started afterwards.
    """

    name = "ray"

    def __init__(
        self,
        *,
        address: str | None = None,
        workers: int | None = None,
        num_cpus: int | None = None,
        max_restarts: int = _MAX_RESTARTS,
    ) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers: expected at least 1, got {workers}")
        self.address = address
        self.workers = workers
        self.num_cpus = num_cpus
        self.max_restarts = max_restarts
        self._ray: ModuleType | None = None
        self._owned = False
        self.cluster_cpus = 0.0
        self.node_address = ""
        #: The session directory (logs) of a local instance started here.
        self.session_dir: Path | None = None

    # ------------------------------------------------------------------ the cluster

    def start(self) -> RayExecutor:
        """Start a local Ray instance on loopback, or join ``address`` (or the one already joined)."""
        if self._ray is not None:
            return self
        loopback = self.address is None or _is_loopback_address(self.address)
        ray = _import_ray(loopback=loopback)
        if not ray.is_initialized():
            common: dict[str, Any] = {
                "namespace": "dialogsim",
                "log_to_driver": False,
                "logging_level": logging.WARNING,
            }
            if self.address is None:
                context = ray.init(
                    num_cpus=self.num_cpus or os.cpu_count() or 1,
                    _node_ip_address="127.0.0.1",
                    include_dashboard=False,
                    **common,
                )
                self.session_dir = Path(context.address_info["session_dir"])
            else:
                ray.init(address=self.address, **common)
            self._owned = True
        self._ray = ray
        try:
            self.node_address = str(ray.util.get_node_ip_address())
            if self.address is None and self._owned and not ipaddress.ip_address(self.node_address).is_loopback:
                raise ConfigError(
                    f"the local Ray instance took the network address {self.node_address} instead of 127.0.0.1; "
                    "refusing to run on it (give --ray-address to use a cluster on purpose)"
                )
            self.cluster_cpus = float(ray.cluster_resources().get("CPU", 0.0))
        except BaseException:
            self.stop()
            raise
        log.info(
            "ray_connected",
            address=self.address or "local",
            started_here=self._owned,
            node_address=self.node_address,
            cpus=self.cluster_cpus,
        )
        return self

    def stop(self) -> None:
        """Shut down the Ray instance if this executor started or joined it."""
        if self._ray is not None and self._owned:
            self._ray.shutdown()
        self._ray = None
        self._owned = False

    def __enter__(self) -> RayExecutor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def worker_count(self) -> int:
        """The actors a run starts: ``workers``, else one per CPU of the cluster."""
        return self.workers or max(1, int(self.cluster_cpus))

    # ------------------------------------------------------------------ a run

    async def run(self, work: Work, sink: RecordSink) -> None:
        started_here = self._ray is None
        if started_here:
            await anyio.to_thread.run_sync(self.start)
        try:
            await self._run(work, sink)
        finally:
            if started_here:
                self.stop()

    async def _run(self, work: Work, sink: RecordSink) -> None:
        ray = self._ray
        assert ray is not None
        if work.total == 0:
            return
        count = min(self.worker_count, work.total)
        secrets, prompts, max_agent_steps = _llm_parts(work.config, count)
        spec = _Spec(
            environments=list(work.environments.values()),
            dialogue=asdict(work.config),
            prompts=prompts,
            max_agent_steps=max_agent_steps,
        )
        spec_ref = ray.put(msgspec.msgpack.encode(spec))
        plan = work.plan if work.plan.portable else None
        plan_ref = ray.put(plan) if plan is not None else None  # Ray hands each actor the plan itself
        secret_bytes = msgspec.msgpack.encode(secrets)
        cpus = self.cluster_cpus or 1.0
        actor_class = ray.remote(DialogueWorker).options(
            num_cpus=min(1.0, cpus / count),
            max_restarts=0,  # a dead worker is replaced by the driver, which re-dispatches its dialogues
            max_task_retries=0,
            max_concurrency=work.concurrency + 4,
        )

        def jobs() -> Iterator[_Job]:
            for index in work.pending:
                if plan is not None:
                    yield _Job(index, work.plan.id_of(index))
                else:
                    yield _Job(index, work.plan.id_of(index), work.build(index))

        dispatch = _Dispatch(jobs())
        errors: list[BaseException] = []
        log.info(
            "ray_run_started",
            workers=count,
            concurrency_per_worker=work.concurrency,
            pending=work.total,
            built_by="workers" if plan is not None else "driver",
        )
        t0 = time.monotonic()

        def make_actor(index: int) -> _Actor:
            return _Actor(index, actor_class.remote(spec_ref, secret_bytes, work.dialogues, plan_ref))

        try:
            async with anyio.create_task_group() as tg:
                for index in range(count):
                    tg.start_soon(self._drive, index, make_actor, work, sink, dispatch, errors)
        except BaseExceptionGroup as group:  # one failure (a worker's, the dataset's) is the story
            leaves = _leaves(group)
            if len(leaves) == 1:
                raise leaves[0] from group
            raise
        if not dispatch.finished:
            cause = f": {_short(errors[0])}" if errors else ""
            raise ExecutorError(
                f"every Ray worker was lost before the run was done ({work.stats.done} dialogues written; "
                f"run the same command again to continue){cause}"
            )
        log.info("ray_run_finished", workers=count, elapsed_s=round(time.monotonic() - t0, 3))

    async def _drive(
        self,
        index: int,
        make_actor: Callable[[int], _Actor],
        work: Work,
        sink: RecordSink,
        dispatch: _Dispatch,
        errors: list[BaseException],
    ) -> None:
        """Keep worker ``index`` busy until the run is done; replace its actor when it dies."""
        ray = self._ray
        assert ray is not None
        replaced = 0
        while not dispatch.finished:
            actor = make_actor(index)
            try:
                if not await self._started(actor, dispatch, errors):
                    return
                async with anyio.create_task_group() as slots:
                    for _ in range(work.concurrency):
                        slots.start_soon(self._slot, actor, work, sink, dispatch)
                if not actor.dead:
                    with anyio.move_on_after(60, shield=True):
                        try:
                            tallies, logs = await actor.handle.close.remote()
                            work.endpoints.extend(tallies)
                            _forward_logs(logs, actor)
                        except ray.exceptions.RayError as exc:
                            log.warning("worker_close_failed", worker=index, error=_short(exc))
                    return
            finally:
                ray.kill(actor.handle, no_restart=True)
            if dispatch.finished:
                return
            if replaced == self.max_restarts:
                log.error("worker_given_up", worker=index, replaced=replaced)
                return
            replaced += 1
            log.warning("worker_replaced", worker=index, replacement=replaced)

    async def _started(self, actor: _Actor, dispatch: _Dispatch, errors: list[BaseException]) -> bool:
        """Wait for ``actor`` to be up; False when it failed, or the run was done before it came up."""
        ray = self._ray
        assert ray is not None
        with anyio.CancelScope() as starting:
            dispatch.when_finished(starting.cancel)  # nothing left: stop waiting for this one
            if dispatch.finished:
                return False
            try:
                actor.pid = await actor.handle.ready.remote()
            except ray.exceptions.RayError as exc:
                errors.append(exc)
                log.error("worker_failed_to_start", worker=actor.index, error=_short(exc))
                return False
        if starting.cancelled_caught:
            return False
        log.info("worker_started", worker=actor.index, pid=actor.pid)
        return True

    async def _slot(self, actor: _Actor, work: Work, sink: RecordSink, dispatch: _Dispatch) -> None:
        ray = self._ray
        assert ray is not None
        encode = msgspec.msgpack.encode
        decode = msgspec.json.Decoder(DialogueRecord).decode
        while (job := await dispatch.take()) is not None:
            if actor.dead:  # died while this slot waited: the scenario is for another worker
                dispatch.lost(job)
                return
            actor.in_flight.add(job.id)
            try:
                sent = encode(job.scenario) if job.scenario is not None else None
                answer = await actor.handle.run.remote(sent, job.index)
            except ray.exceptions.RayActorError as exc:
                if not actor.dead:  # the first of this actor's slots to hear of it reports it
                    actor.dead = True
                    log.warning(
                        "worker_lost",
                        worker=actor.index,
                        pid=actor.pid,
                        error=_short(exc),
                        redispatched=sorted(actor.in_flight),
                    )
                actor.in_flight.discard(job.id)
                dispatch.lost(job)
                return
            except ray.exceptions.RayTaskError as exc:
                actor.in_flight.discard(job.id)
                dispatch.lost(job)
                raise ExecutorError(f"worker {actor.index} failed outside any dialogue: {_short(exc)}") from exc
            actor.in_flight.discard(job.id)
            line, tool_calls, tool_errors, logs = answer
            record = decode(line)
            work.stats.tool_calls += tool_calls
            work.stats.tool_errors += tool_errors
            _forward_logs(logs, actor)
            sink(record)
            dispatch.done()


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return found


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _forward_logs(raw: bytes, actor: _Actor) -> None:
    """Write a worker's log events into the driver's logs (``run.log``), marked with the worker."""
    if not raw:
        return
    for entry in msgspec.json.decode(raw):
        if not isinstance(entry, dict):
            continue
        level = _LEVELS.get(str(entry.pop("level", "info")), logging.INFO)
        event = str(entry.pop("event", "worker_log"))
        name = str(entry.pop("logger", "dialogsim.run.worker"))
        entry.pop("timestamp", None)
        entry["worker"] = actor.index
        structlog.stdlib.get_logger(name).log(level, event, **entry)
