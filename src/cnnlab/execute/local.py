"""Run a plan on this machine: in this process, or in worker processes that split the cores.

Workers only train and send events; the driver (this process) alone writes the store.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
from typing import Any, Optional, Union

from cnnlab.data import DataCache
from cnnlab.errors import CnnlabError
from cnnlab.execute.driver import Driver, PlanOutcome
from cnnlab.execute.progress import StudyProgress
from cnnlab.execute.runner import train_run
from cnnlab.models import check_model
from cnnlab.spec.plan import RunConfig
from cnnlab.store import Store
from cnnlab.train.device import cpu_count


# A worker pool takes seconds to start and loads the dataset once per worker, so it is used
# for plans long enough to repay that: here, at least a minute of estimated training.
POOL_MIN_SECONDS = 60.0
# A deliberately low per-core rate for the estimate (measured: 30-100 GFLOP/s per core on
# CIFAR-sized nets in fp32), so that borderline plans lean towards the pool.
ESTIMATE_FLOPS_PER_CORE = 50e9


def execute_local(
    configs: list[RunConfig],
    store: Store,
    cache: DataCache,
    progress: StudyProgress,
    *,
    force: bool = False,
    threads: Optional[int] = None,
    workers: Union[int, str] = "auto",
) -> PlanOutcome:
    """Train every unfinished run of the plan; with ``workers > 1``, that many at a time in
    worker processes with cores // workers threads each.

    ``workers="auto"`` decides runs x threads: a plan of several runs that would train for
    more than a minute goes to one single-threaded worker per core (small CNNs cannot keep
    two cores busy: on 2 cores two one-thread runs trained A2 1.2x and study C's net 1.9x
    faster than one two-thread run); anything shorter trains here, one run at a time.
    """
    driver = Driver(store, progress, configs, force=force)
    try:
        if workers == "auto":
            workers = auto_workers(driver.todo, cache, threads)
            if workers > 1:
                cache.clear()  # each worker loads its own copy; this process needs none
                progress.message(f"Training {workers} runs at a time, one per core "
                                 f"(--workers 1 trains one run at a time on every core)")
        if workers > 1 and len(driver.todo) > 1:
            _run_pool(driver, cache, workers, threads or max(1, cpu_count() // workers))
        else:
            _run_here(driver, cache, threads)
    finally:
        outcome = driver.finish()
    return outcome


def cuda_present() -> bool:
    import torch

    return torch.cuda.is_available()


def auto_workers(todo: list[RunConfig], cache: DataCache, threads: Optional[int]) -> int:
    """How many runs to train at once: one per core for plans long enough, else 1."""
    cores = cpu_count()
    if cores < 2 or len(todo) < 2 or (threads and threads > 1):
        return 1
    if any(config.train.device != "cpu" and (config.train.device == "cuda" or cuda_present()) for config in todo):
        return 1  # GPU runs share one device; the CPU cores only feed it
    try:
        _, train = cache.split(todo[0])
    except Exception:  # noqa: BLE001 - the run itself will report the problem, in its own record
        return 1
    flops = 0.0
    for config in todo:
        try:
            checked = check_model(config.layer_list(), config.variant_spec, tuple(train.images.shape[1:]))
        except CnnlabError:
            continue
        images = min(len(train), config.limit_train or len(train))
        flops += checked.step_flops * images * config.train.epochs
    seconds = flops / (ESTIMATE_FLOPS_PER_CORE * cores)
    return min(cores, len(todo)) if seconds >= POOL_MIN_SECONDS else 1


def _run_here(driver: Driver, cache: DataCache, threads: Optional[int]) -> None:
    running: Optional[str] = None
    try:
        for config in driver.todo:
            running = config.run_id
            attempt, resume = driver.begin(config)
            train_run(config, driver.handle, cache, resume=resume, attempt=attempt, threads=threads)
    except KeyboardInterrupt:
        driver.interrupt([running] if running else [])


# ---------------------------------------------------------------- worker processes


def _exit_with_parent() -> None:
    """A driver killed with SIGKILL cannot stop its workers: they watch it and leave with it."""
    import os
    import threading

    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (parent.join(), os._exit(1)), daemon=True).start()


def _worker(tasks: Any, events: Any, data_dir: Optional[str], threads: int) -> None:
    """A worker process: train the runs it is given, send every event back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _exit_with_parent()
    from pathlib import Path

    cache = DataCache(Path(data_dir) if data_dir else None, keep_sources=False)
    while True:
        task = tasks.get()
        if task is None:
            return
        config = RunConfig.model_validate(task["config"])
        train_run(config, events.put, cache, resume=task["resume"], attempt=task["attempt"], threads=threads)
        events.put({"kind": "idle", "worker": task["worker"]})


class _Slot:
    """One worker process with its own task queue, so the driver knows what each one trains."""

    def __init__(self, context: Any, index: int, events: Any, data_dir: Optional[str], threads: int):
        self.index = index
        self.tasks = context.Queue()
        self.process = context.Process(target=_worker, args=(self.tasks, events, data_dir, threads), daemon=True)
        self.process.start()
        self.config: Optional[RunConfig] = None

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)


def _run_pool(driver: Driver, cache: DataCache, workers: int, threads: int) -> None:
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    data_dir = str(cache.data_dir) if cache.data_dir else None
    slots = [_Slot(context, i, events, data_dir, threads) for i in range(min(workers, len(driver.todo)))]
    pending = list(driver.todo)

    def dispatch(slot: _Slot) -> None:
        slot.config = pending.pop(0) if pending else None
        if slot.config is not None:
            attempt, resume = driver.begin(slot.config)
            slot.tasks.put({"config": slot.config.model_dump(mode="json"), "resume": resume, "attempt": attempt,
                            "worker": slot.index})

    try:
        for slot in slots:
            dispatch(slot)
        while any(slot.config is not None for slot in slots):
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                for number, slot in enumerate(slots):
                    if slot.config is not None and not slot.process.is_alive():
                        # A lost worker costs only its run's epochs since the last checkpoint:
                        # the run goes back to the front of the queue and resumes in a new process.
                        pending.insert(0, slot.config)
                        slot.stop()
                        slots[number] = _Slot(context, slot.index, events, data_dir, threads)
                        dispatch(slots[number])
                continue
            if event["kind"] == "idle":
                dispatch(slots[event["worker"]])
            else:
                driver.handle(event)
    except KeyboardInterrupt:
        driver.interrupt([slot.config.run_id for slot in slots if slot.config is not None])
    finally:
        for slot in slots:
            slot.tasks.put(None)
        for slot in slots:
            slot.stop()
