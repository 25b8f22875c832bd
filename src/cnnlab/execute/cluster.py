"""Run a plan on a Ray cluster: each run (or stacked group of seeds) is a Ray task; the driver alone
writes the store.

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
from cnnlab.execute.grouping import Task, plan_tasks
from cnnlab.execute.progress import StudyProgress
from cnnlab.execute.runner import train_group
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


def _train_group(configs_json: list[dict], source: Any, resumes: list[Optional[bytes]], attempts: list[int],
                events: Any, threads: int) -> list[str]:
    """What runs on a Ray worker: one run or a stacked group, its events pushed to the driver's queue."""
    configs = [RunConfig.model_validate(config) for config in configs_json]
    cache = DataCache()
    cache.sources[source_key(configs[0])] = source
    return train_group(configs, events.put, cache, resumes=resumes, attempts=attempts, threads=threads)


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
    stack: Optional[str] = None,
) -> PlanOutcome:
    """Train every unfinished run as a Ray task with ``threads`` CPUs (and ``gpus`` GPUs) each; the
    seeds of a configuration stacked (``grouping.plan_tasks``, ``stack``) are one task."""
    ray = connect(address)
    from ray.util.queue import Queue

    driver = Driver(store, progress, configs, force=force)
    events = Queue()
    task = ray.remote(_train_group).options(num_cpus=threads, num_gpus=gpus, max_retries=0, name="cnnlab_run")
    sources: dict[str, Any] = {}
    running: dict[Any, Task] = {}

    def submit(work: Task) -> None:
        key = source_key(work.configs[0])
        if key not in sources:  # each dataset goes to the object store once
            sources[key] = ray.put(cache.source(work.configs[0]))
        begun = [driver.begin(config) for config in work.configs]
        ref = task.remote([config.model_dump(mode="json") for config in work.configs], sources[key],
                          [resume for _, resume in begun], [attempt for attempt, _ in begun], events, threads)
        running[ref] = work

    def drain() -> None:
        while not events.empty():
            for event in events.get_nowait_batch(events.qsize()):
                driver.handle(event)

    try:
        for work in plan_tasks(driver.todo, cache, stack, progress.message):
            submit(work)
        while running:
            done, _ = ray.wait(list(running), timeout=0.2)
            drain()
            for ref in done:
                work = running.pop(ref)
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as error:
                    drain()
                    retry = [config for config in work.configs if driver.worker_lost(config, type(error).__name__)]
                    if retry:
                        submit(Task(retry))
    except (KeyboardInterrupt, CnnlabError) as error:
        for ref in running:
            ray.cancel(ref, force=True)
        time.sleep(0.2)
        if isinstance(error, KeyboardInterrupt):
            driver.interrupt([run_id for work in running.values() for run_id in work.run_ids])
        else:  # bad input met by one run stops the study; the others in flight stop with it
            driver.interrupt([run_id for work in running.values() for run_id in work.run_ids],
                             "stopped with the study, on an error another run met")
            raise
    finally:
        outcome = driver.finish()
        events.shutdown()
        ray.shutdown()
    return outcome
