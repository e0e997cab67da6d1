"""``--executor``, ``--ray-address``, ``--workers``: where a command's dialogues run (``generate``, ``eval``)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING

from simulator.cli._types import positive_int

if TYPE_CHECKING:
    from simulator.run.ray_executor import RayExecutor

__all__ = ["add_executor_arguments", "describe", "ray_executor"]


def add_executor_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--executor",
        choices=["inprocess", "ray"],
        default="inprocess",
        help=(
            "inprocess: every dialogue in this process (default); ray: on Ray workers, each running "
            "--concurrency dialogues, while this process alone writes the dataset (needs dialogsim[ray])"
        ),
    )
    group.add_argument(
        "--ray-address",
        metavar="ADDR",
        help=(
            "with --executor ray: join this Ray cluster (HOST:PORT, or auto); default: start a local "
            "instance on 127.0.0.1 with this machine's cores"
        ),
    )
    group.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="with --executor ray: Ray workers to start (default: one per CPU of the cluster)",
    )


def ray_executor(args: argparse.Namespace) -> RayExecutor | None:
    """The Ray executor the flags ask for (None: in process); ConfigError for a bad combination."""
    from schemas.errors import ConfigError

    if args.executor != "ray":
        given = [flag for flag, value in (("--ray-address", args.ray_address), ("--workers", args.workers)) if value]
        if given:
            raise ConfigError(f"{given[0]} needs --executor ray")
        return None
    from simulator.run.ray_executor import RayExecutor, require_ray

    require_ray()
    return RayExecutor(address=args.ray_address, workers=args.workers)


def describe(executor: RayExecutor, concurrency: int, stack: contextlib.ExitStack) -> None:
    """Start or join the Ray cluster for the rest of ``stack``, saying so on stderr."""
    if executor.address is None:
        print("ray: starting a local Ray instance on 127.0.0.1 ...", file=sys.stderr, flush=True)
    stack.enter_context(executor)
    where = (
        f"a local Ray instance on {executor.node_address}"
        if executor.address is None
        else f"the Ray cluster at {executor.address}"
    )
    print(
        f"ray: {where} ({executor.cluster_cpus:g} CPUs); {executor.worker_count} workers x {concurrency} dialogues",
        file=sys.stderr,
    )
