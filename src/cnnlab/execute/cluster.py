"""Run a plan on a Ray cluster: each run is a Ray task; the driver alone writes the store.

The dataset goes into Ray's object store once and every task reads it from there. Tasks send
their events (progress, epochs, checkpoints, final weights and predictions) back through a
Ray queue, so no shared filesystem is assumed. A task whose worker dies is submitted again
from the run's last checkpoint (cnnlab retries itself instead of letting Ray restart the task
from scratch), up to the driver's ``MAX_ATTEMPTS`` as in the local pool; the driver drops events
of the dead attempt, so no run is recorded twice.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Optional

from cnnlab.data import DataCache, source_key
from cnnlab.errors import CnnlabError
from cnnlab.execute.driver import Driver, PlanOutcome
from cnnlab.execute.progress import StudyProgress
from cnnlab.execute.runner import train_run
from cnnlab.spec.plan import RunConfig
from cnnlab.store import Store


class ClusterError(CnnlabError):
    """Ray is missing, or the cluster cannot be reached."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError("--executor ray needs Ray, which is not installed: pip install 'cnnlab[ray]' "
                           "(or pip install ray)") from None
    return ray


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail at once, naming the address, rather than let Ray retry for a minute."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--address {address!r}: expected HOST:PORT of a Ray head (e.g. 10.0.0.5:6379) or 'auto'")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as error:
        raise ClusterError(f"cannot reach a Ray cluster at {address} ({error.strerror or error}); start one there "
                           "with 'ray start --head --port PORT' or check --address") from None


def connect(address: str) -> Any:
    """Connect this process to the cluster at ``address`` ('auto': the one started on this machine)."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    if address != "auto":
        _check_reachable(address)
    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        hint = "no Ray cluster is running on this machine; start one with 'ray start --head'" if address == "auto" else str(error)
        raise ClusterError(f"cannot connect to a Ray cluster at --address {address}: {hint}") from None
    return ray


def _train_task(config_json: dict, source: Any, resume: Optional[bytes], attempt: int, events: Any,
                threads: int) -> str:
    """What runs on a Ray worker: one run, its events pushed to the driver's queue."""
    config = RunConfig.model_validate(config_json)
    cache = DataCache()
    cache.sources[source_key(config)] = source
    return train_run(config, events.put, cache, resume=resume, attempt=attempt, threads=threads)


def execute_ray(
    configs: list[RunConfig],
    store: Store,
    cache: DataCache,
    progress: StudyProgress,
    *,
    address: str = "auto",
    force: bool = False,
    threads: int = 1,
    gpus: float = 0.0,
) -> PlanOutcome:
    """Train every unfinished run as a Ray task with ``threads`` CPUs (and ``gpus`` GPUs) each."""
    ray = connect(address)
    from ray.util.queue import Queue

    driver = Driver(store, progress, configs, force=force)
    events = Queue()
    task = ray.remote(_train_task).options(num_cpus=threads, num_gpus=gpus, max_retries=0, name="cnnlab_run")
    sources: dict[str, Any] = {}
    running: dict[Any, RunConfig] = {}

    def submit(config: RunConfig) -> None:
        key = source_key(config)
        if key not in sources:  # each dataset goes to the object store once
            sources[key] = ray.put(cache.source(config))
        attempt, resume = driver.begin(config)
        ref = task.remote(config.model_dump(mode="json"), sources[key], resume, attempt, events, threads)
        running[ref] = config

    def drain() -> None:
        while not events.empty():
            for event in events.get_nowait_batch(events.qsize()):
                driver.handle(event)

    try:
        for config in driver.todo:
            submit(config)
        while running:
            done, _ = ray.wait(list(running), timeout=0.2)
            drain()
            for ref in done:
                config = running.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as error:
                    drain()
                    if driver.worker_lost(config, type(error).__name__):
                        submit(config)
    except (KeyboardInterrupt, CnnlabError) as error:
        for ref in running:
            ray.cancel(ref, force=True)
        time.sleep(0.2)
        if isinstance(error, KeyboardInterrupt):
            driver.interrupt([c.run_id for c in running.values()])
        else:  # bad input met by one run stops the study; the others in flight stop with it
            driver.interrupt([c.run_id for c in running.values()], "stopped with the study, on an error another run met")
            raise
    finally:
        outcome = driver.finish()
        events.shutdown()
        ray.shutdown()
    return outcome
