"""Scenarios planned in a second process while this one runs the dialogues.

Planning an offline scenario (a database copy, a planner executing every task's gold calls)
takes a few milliseconds of CPU, in the same event loop that runs the dialogues: on a run
that is CPU-bound all of it is added to the wall time. When the plan can be built
elsewhere (``ScenarioPlan.remote``: plain data), the run is big enough to repay a process
start (``MIN_SCENARIOS``) and the machine has a core to spare, a builder process
(``python -m simulator.run.builder``) plans the scenarios in order, a few ahead of the
workers, and this process only unpickles them.

Nothing changes in what is run: the same plan builds the same scenario for an index in
either process (a scenario depends only on its environment, the seed and its index), each
id is checked against the plan's, and scenarios are handed out in the plan's order. Until
the builder is up, and if it ever breaks, scenarios are built here as before.

The builder is a plain child process talking over its stdin and stdout (length-prefixed
pickles): it does not import the caller's ``__main__`` (as ``multiprocessing``'s spawn
would, which hangs an unguarded script), it ignores Ctrl-C (the run stops it), and it
exits when its stdin closes, so a run killed with ``kill -9`` leaves no builder behind.
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import subprocess
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import IO, TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.buffered import BufferedByteReceiveStream

from simulator.log import get_logger

if TYPE_CHECKING:
    from schemas import Scenario

__all__ = ["AHEAD", "MIN_SCENARIOS", "scenario_feed", "uses_builder"]

log = get_logger(__name__)

#: Runs with fewer scenarios to build plan them here: a builder process costs about half
#: a second of CPU to start (its imports), what planning ~100 scenarios costs.
MIN_SCENARIOS = 200
#: Scenarios the builder plans ahead of the workers.
AHEAD = 8
#: Once it broke, how long to wait for answers it may still have in the pipe: it exited
#: (its output ends at once) or stopped reading (then whatever is ahead is planned here).
_DRAIN_S = 5.0

_HEADER = struct.Struct(">I")


def uses_builder(remote: object, count: int) -> bool:
    """Whether a run building ``count`` scenarios from ``remote`` plans them in a builder process."""
    return remote is not None and count >= MIN_SCENARIOS and (os.cpu_count() or 1) >= 2


@asynccontextmanager
async def scenario_feed(
    positions: Iterator[int],
    build: Callable[[int], Scenario],
    remote: Callable[[int], Scenario] | None,
    count: int,
    check: Callable[[int, Scenario], Scenario],
) -> AsyncIterator[AsyncIterator[Scenario]]:
    """The scenarios of ``positions`` in order: ``build(p)`` here, or ``remote(p)`` in a builder process.

    ``check(p, scenario)`` sees every scenario the builder made (its id against the plan's);
    ``build`` is the plan's own and checks its own. ``count`` is how many positions there are.
    """
    if remote is None or not uses_builder(remote, count):
        yield _here(positions, build)
        return
    async with _Builder.start(remote) as builder:
        yield builder.feed(positions, build, check)


async def _here(positions: Iterator[int], build: Callable[[int], Scenario]) -> AsyncIterator[Scenario]:
    for p in positions:
        yield build(p)


class _Builder:
    """The builder process, and a task reading its answers (in the order asked)."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self.ready = anyio.Event()
        self.broken = False
        self.send, self.answers = anyio.create_memory_object_stream[tuple[str, Any]](max_buffer_size=AHEAD + 1)

    @classmethod
    @asynccontextmanager
    async def start(cls, remote: Callable[[int], Scenario]) -> AsyncIterator[_Builder]:
        command = [sys.executable, "-m", "simulator.run.builder"]
        process = await anyio.open_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
        builder = cls(process)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(builder._read)
                await builder._write(pickle.dumps(sys.path))
                await builder._write(pickle.dumps(remote, protocol=pickle.HIGHEST_PROTOCOL))
                try:
                    yield builder
                finally:
                    tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The reader keeps its own errors: whatever is here came from the run, which gets it as it was.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            builder.answers.close()
            with anyio.CancelScope(shield=True):
                await builder._stop()

    async def _write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        try:
            await self.process.stdin.send(_HEADER.pack(len(data)) + data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            self._break("its input closed")

    async def _read(self) -> None:
        assert self.process.stdout is not None
        stream = BufferedByteReceiveStream(self.process.stdout)
        try:
            async with self.send:
                while True:
                    (size,) = _HEADER.unpack(await stream.receive_exactly(_HEADER.size))
                    data = await stream.receive_exactly(size)
                    if not self.ready.is_set():
                        self.ready.set()  # the first frame says it is up
                        continue
                    await self.send.send(pickle.loads(data))
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._break(f"it exited (status {self.process.returncode})")
        except Exception as exc:  # an answer that does not unpickle: plan the rest here
            self._break(f"{type(exc).__name__}: {exc}")

    def _break(self, why: str) -> None:
        if not self.broken:
            self.broken = True
            log.warning("the scenario builder process stopped (%s); planning here", why)

    async def _stop(self) -> None:
        """Close its input (it exits), wait for it (its CPU is then counted as this process's children's)."""
        if self.process.stdin is not None:
            await self.process.stdin.aclose()
        with anyio.move_on_after(5):
            await self.process.wait()
            return
        self.process.kill()
        await self.process.wait()

    async def feed(
        self, positions: Iterator[int], build: Callable[[int], Scenario], check: Callable[[int, Scenario], Scenario]
    ) -> AsyncIterator[Scenario]:
        ahead: deque[int] = deque()
        drained = False  # once it broke: every answer it gave has been taken
        while True:
            if self.broken and ahead and not drained:
                # Answers it sent before it broke are used (in order); what it never answered is planned here.
                answer: tuple[str, Any] | None = None
                with anyio.move_on_after(_DRAIN_S):
                    try:
                        answer = await self.answers.receive()
                    except anyio.EndOfStream:
                        pass
                if answer is None:
                    drained = True
                    continue
                kind, value = answer
                if kind == "error":
                    raise value
                yield check(ahead.popleft(), value)
                continue
            if self.broken or (not ahead and not self.ready.is_set()):
                # Not up yet (or broken): plan here rather than keep the workers waiting.
                p = ahead.popleft() if ahead else next(positions, None)
                if p is None:
                    return
                yield build(p)
                await anyio.lowlevel.checkpoint()  # let the reader see the builder's "ready"
                continue
            while len(ahead) < AHEAD and not self.broken:
                p = next(positions, None)
                if p is None:
                    break
                ahead.append(p)
                await self._write(p.to_bytes(8, "big"))
            if not ahead:
                return
            try:
                kind, value = await self.answers.receive()
            except anyio.EndOfStream:
                continue  # broken: what it answered is taken, the rest planned here
            p = ahead.popleft()
            if kind == "error":
                raise value
            yield check(p, value)


# --------------------------------------------------------------------------- the builder process


def _read_frame(stream: IO[bytes]) -> bytes | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    return data if len(data) == size else None


def _write_frame(stream: IO[bytes], data: bytes) -> None:
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _answer(build: Callable[[int], Scenario], position: int) -> bytes:
    try:
        return pickle.dumps(("ok", build(position)), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        try:
            return pickle.dumps(("error", exc), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))


def serve() -> None:
    """The builder process: a plan from stdin, then positions; their scenarios to stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group: the run stops us
    inp = sys.stdin.buffer
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # anything printed goes to stderr, not into the answers
    paths = _read_frame(inp)
    if paths is None:
        return
    sys.path[:] = pickle.loads(paths)
    plan = _read_frame(inp)
    if plan is None:
        return
    build = pickle.loads(plan)
    _write_frame(out, b"ready")
    while (frame := _read_frame(inp)) is not None:
        _write_frame(out, _answer(build, int.from_bytes(frame, "big")))


if __name__ == "__main__":
    serve()
