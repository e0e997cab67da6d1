"""Dialogue functions for the Ray tests, imported by the Ray workers (so: a module of its own)."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import anyio

from schemas import DialogueRecord, Environment, Scenario
from simulator.dialogue.runner import DialogueConfig, EventSink, run_dialogue
from simulator.run.execute import DialogueFn


def _claim(marker: str) -> bool:
    """True for the one caller, on any worker, that creates ``marker`` (it holds that process's pid)."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    return True


@dataclass(frozen=True)
class KillOnce:
    """Plain dialogues, except that the worker that first gets ``victim`` kills its own process.

    It waits until ``busy`` dialogues (the victim's included) are in flight in that worker,
    so the kill takes others down with it; the victim's re-run elsewhere finds ``marker``
    taken and runs normally.
    """

    marker: str
    victim: str
    busy: int

    def __call__(
        self, environments: Sequence[Environment], total: int | None
    ) -> AbstractAsyncContextManager[DialogueFn]:
        return self._open()

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[DialogueFn]:
        full = anyio.Event()
        active = 0

        async def dialogue_fn(
            scenario: Scenario, environment: Environment, config: DialogueConfig, *, on_event: EventSink | None = None
        ) -> DialogueRecord:
            nonlocal active
            active += 1
            if active >= self.busy:
                full.set()
            try:
                if scenario.id == self.victim and _claim(self.marker):
                    await full.wait()
                    os.kill(os.getpid(), signal.SIGKILL)
                return await run_dialogue(scenario, environment, config, on_event=on_event)
            finally:
                active -= 1

        yield dialogue_fn


@dataclass(frozen=True)
class KillAlways:
    """Plain dialogues, except that any worker that gets ``victim`` kills its own process at once."""

    victim: str

    def __call__(
        self, environments: Sequence[Environment], total: int | None
    ) -> AbstractAsyncContextManager[DialogueFn]:
        return self._open()

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[DialogueFn]:
        async def dialogue_fn(
            scenario: Scenario, environment: Environment, config: DialogueConfig, *, on_event: EventSink | None = None
        ) -> DialogueRecord:
            if scenario.id == self.victim:
                os.kill(os.getpid(), signal.SIGKILL)
            return await run_dialogue(scenario, environment, config, on_event=on_event)

        yield dialogue_fn
