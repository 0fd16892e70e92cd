"""Where a scaled run executes: a local cluster of worker processes, a scheduler address, or in-process."""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, Iterator, Literal, Union

log = logging.getLogger("cen.scale")

ClientLike = Union["distributed.Client", str, None, Literal["sync"]]  # noqa: F821
"""A :class:`distributed.Client`, a scheduler address, ``None`` (start a local cluster) or ``"sync"``."""


def machine_workers() -> int:
    """Worker processes for a local cluster: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


TRIM_ENV = "MALLOC_TRIM_THRESHOLD_"
DASK_TRIM_DEFAULT = "65536"
"""Dask's nannies set ``MALLOC_TRIM_THRESHOLD_=65536`` in workers (and in the parent process)."""


def local_cluster(n_workers: int | None = None, *, threads_per_worker: int = 1,
                  memory_limit: str | int = "auto", dashboard_address: str = ":8787",
                  malloc_trim_threshold: int | None = None, **kwargs: Any) -> "distributed.LocalCluster":  # noqa: F821
    """A :class:`LocalCluster` of worker *processes* (pure-Python stages hold the GIL).

    ``n_workers`` defaults to :func:`machine_workers`; ``memory_limit="auto"`` splits the
    machine's memory evenly between workers. If the dashboard port is taken, Dask picks another.

    ``malloc_trim_threshold=None`` leaves glibc's adaptive malloc in the workers: Dask's default
    (``MALLOC_TRIM_THRESHOLD_=65536``) turns off glibc's adaptive mmap threshold, so every
    label stack (tens of MB) is mapped and zero-faulted afresh; measured on the statistics stage
    that costs 4-10x the system time of one process (see ``benchmarks/bench_scale.py``).
    Pass a byte count to set the variable (Dask's choice returns memory to the OS sooner).
    """
    import dask
    from distributed import LocalCluster

    if malloc_trim_threshold is None and os.environ.get(TRIM_ENV) == DASK_TRIM_DEFAULT:
        # an earlier cluster's nanny wrote Dask's default into this process's environment;
        # spawned workers would inherit it whatever the config says
        del os.environ[TRIM_ENV]
    trim = None if malloc_trim_threshold is None else str(int(malloc_trim_threshold))
    with dask.config.set({f"distributed.nanny.pre-spawn-environ.{TRIM_ENV}": trim}):
        return LocalCluster(n_workers=n_workers or machine_workers(), threads_per_worker=threads_per_worker,
                            processes=True, memory_limit=memory_limit, dashboard_address=dashboard_address,
                            **kwargs)


@contextlib.contextmanager
def connect(client: ClientLike = None, **cluster_kwargs: Any) -> Iterator[Any]:
    """Yield a Dask client for ``client`` (see the module docstring); ``"sync"`` yields ``None``.

    A client passed in is used unchanged and left open; a client or cluster started here is
    closed on exit. ``cluster_kwargs`` go to :func:`local_cluster` when one is started.
    """
    if isinstance(client, str) and client == "sync":
        yield None
        return
    from distributed import Client

    if isinstance(client, Client):
        yield client
        return
    if isinstance(client, str):
        with Client(client) as c:
            log.info("connected to Dask scheduler %s (dashboard: %s)", client, c.dashboard_link)
            yield c
        return
    if client is not None:
        raise TypeError(f"client must be a distributed.Client, a scheduler address, None or 'sync', "
                        f"got {type(client).__name__}")
    with local_cluster(**cluster_kwargs) as cluster, Client(cluster) as c:
        log.info("started a LocalCluster of %d workers (dashboard: %s)", len(cluster.workers), c.dashboard_link)
        yield c


def dashboard_link(client: Any) -> str | None:
    """The Dask dashboard URL of a client (``None`` for the in-process ``"sync"`` mode)."""
    return None if client is None else client.dashboard_link

