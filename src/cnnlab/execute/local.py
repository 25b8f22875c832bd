"""Run a plan on this machine: in this process, or in worker processes that split the cores.

Workers only train and send events; the driver (this process) alone writes the store.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from multiprocessing.connection import Connection, wait
from typing import Any, Optional, Union

from cnnlab.data import DataCache
from cnnlab.errors import CnnlabError, StoreError
from cnnlab.execute.driver import Driver, PlanOutcome
from cnnlab.execute.grouping import Task, plan_tasks
from cnnlab.execute.progress import StudyProgress
from cnnlab.execute.runner import train_group
from cnnlab.models import check_model
from cnnlab.spec.plan import RunConfig
from cnnlab.store import Store
from cnnlab.train.device import cpu_count


# A worker pool takes about 3 s to start (spawned workers import torch and load the dataset, in
# parallel), so it is used for plans long enough to repay that: at least 10 s of estimated
# training per core. The quickstart (24 digits runs, an estimated 18 s a core on 2 cores) took 34 s
# in one process and 22 s in two workers; stacked, 21 s and 17 s.
POOL_MIN_SECONDS = 10.0
# A deliberately low per-core rate for the estimate (measured: 30-100 GFLOP/s per core on
# CIFAR-sized nets in fp32), so that borderline plans lean towards the pool.
ESTIMATE_FLOPS_PER_CORE = 50e9
# What a step of a small net costs besides its arithmetic (operator calls, the optimizer, its share
# of evaluation): the quickstart's runs averaged 2.2 ms a step in one process, nearly all of it this.
ESTIMATE_STEP_SECONDS = 2e-3


def execute_local(
    configs: list[RunConfig],
    store: Store,
    cache: DataCache,
    progress: StudyProgress,
    *,
    force: bool = False,
    threads: Optional[int] = None,
    workers: Union[int, str] = "auto",
    stack: Optional[str] = None,
) -> PlanOutcome:
    """Train every unfinished run of the plan; with ``workers > 1``, that many at a time in
    worker processes with cores // workers threads each.

    ``workers="auto"`` decides runs x threads: a plan of several runs that would train for
    more than ``POOL_MIN_SECONDS`` a core goes to one single-threaded worker per core (small CNNs cannot keep
    two cores busy: on 2 cores two one-thread runs trained A2 1.2x and study C's net 1.9x
    faster than one two-thread run); anything shorter trains here, one run at a time.
    ``stack`` (auto, always, never; default each run's ``train.stack``) says whether the seeds of
    a configuration train as one stacked model (``grouping.plan_tasks``).
    """
    driver = Driver(store, progress, configs, force=force)
    try:
        tasks = plan_tasks(driver.todo, cache, stack, progress.message)
        if workers == "auto":
            workers = auto_workers(driver.todo, cache, threads, tasks=len(tasks))
            if workers > 1:
                cache.clear()  # each worker loads its own copy; this process needs none
                what = "stacked groups or runs" if any(task.stacked for task in tasks) else "runs"
                progress.message(f"Training {workers} {what} at a time, one per core "
                                 f"(--workers 1 trains one at a time on every core)")
        if workers > 1 and len(tasks) > 1:
            _run_pool(driver, tasks, cache, workers, threads or max(1, cpu_count() // workers))
        else:
            _run_here(driver, tasks, cache, threads)
    finally:
        outcome = driver.finish()
    return outcome


def cuda_present() -> bool:
    import torch

    return torch.cuda.is_available()


def auto_workers(todo: list[RunConfig], cache: DataCache, threads: Optional[int], tasks: Optional[int] = None) -> int:
    """How many tasks (runs, or stacked groups of seeds) to train at once: one per core for plans
    long enough, else 1. ``tasks``: how many the plan's runs make (default: one per run)."""
    cores = cpu_count()
    tasks = len(todo) if tasks is None else tasks
    if cores < 2 or tasks < 2 or (threads and threads > 1):
        return 1
    if any(config.train.device != "cpu" and (config.train.device == "cuda" or cuda_present()) for config in todo):
        return 1  # GPU runs share one device; the CPU cores only feed it
    try:
        _, train = cache.split(todo[0])
    except Exception:  # noqa: BLE001 - the run itself will report the problem, in its own record
        return 1
    flops, steps = 0.0, 0
    for config in todo:
        try:
            checked = check_model(config.layer_list(), config.variant_spec, tuple(train.images.shape[1:]))
        except CnnlabError:
            continue
        images = min(len(train), config.limit_train or len(train))
        flops += checked.step_flops * images * config.train.epochs
        steps += -(-images // config.train.batch_size) * config.train.epochs
    seconds = (flops / ESTIMATE_FLOPS_PER_CORE + steps * ESTIMATE_STEP_SECONDS) / cores
    return min(cores, tasks) if seconds >= POOL_MIN_SECONDS else 1


def _run_here(driver: Driver, tasks: list[Task], cache: DataCache, threads: Optional[int]) -> None:
    running: list[str] = []
    try:
        for task in tasks:
            running = task.run_ids
            begun = [driver.begin(config) for config in task.configs]
            train_group(task.configs, driver.handle, cache, resumes=[resume for _, resume in begun],
                       attempts=[attempt for attempt, _ in begun], threads=threads)
    except KeyboardInterrupt:
        driver.interrupt(running)
    except CnnlabError:
        # Bad input met by a run: the other members of its stacked group stop with it, resumable.
        with contextlib.suppress(StoreError):
            driver.interrupt(running, "stopped with the study, on an error another run met")
        raise


# ---------------------------------------------------------------- worker processes


def _exit_with_parent() -> None:
    """A driver killed with SIGKILL cannot stop its workers: they watch it and leave with it."""
    import os
    import threading

    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (parent.join(), os._exit(1)), daemon=True).start()


def _worker(connection: Connection, data_dir: Optional[str], threads: int) -> None:
    """A worker process: train the tasks it is given (a run, or a stacked group), send every event back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _exit_with_parent()
    from pathlib import Path

    cache = DataCache(Path(data_dir) if data_dir else None, keep_sources=False)
    while True:
        try:
            task = connection.recv()
        except EOFError:  # the driver has gone
            return
        if task is None:
            return
        configs = [RunConfig.model_validate(config) for config in task["configs"]]
        train_group(configs, connection.send, cache, resumes=task["resumes"], attempts=task["attempts"], threads=threads)
        connection.send({"kind": "idle"})


class _Slot:
    """One worker process and its own pipe (tasks in, events out). A pipe of its own, not a
    queue shared by all: a worker killed half-way through sending can spoil only its own pipe,
    and never dies holding a lock the other workers need to send."""

    def __init__(self, context: Any, data_dir: Optional[str], threads: int):
        self.connection, theirs = context.Pipe()
        self.process = context.Process(target=_worker, args=(theirs, data_dir, threads), daemon=True)
        self.process.start()
        theirs.close()  # the worker holds the only other end: when it dies, reading here ends at once
        self.task: Optional[Task] = None

    def receive(self) -> list[dict[str, Any]]:
        """The events waiting in the pipe; raises EOFError once the worker has gone (events it
        sent whole before dying come first)."""
        events = []
        try:
            while self.connection.poll():
                events.append(self.connection.recv())
        except (EOFError, OSError):
            if not events:
                raise EOFError from None
        return events

    def cause(self) -> str:
        """How the worker ended, in words."""
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"killed by {name}" + (", perhaps for lack of memory" if name == "SIGKILL" else "")
        return f"exit status {code}" if code is not None else "it stopped answering"

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.send(None)
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)
        self.connection.close()


def _run_pool(driver: Driver, tasks: list[Task], cache: DataCache, workers: int, threads: int) -> None:
    context = multiprocessing.get_context("spawn")
    data_dir = str(cache.data_dir) if cache.data_dir else None
    slots = [_Slot(context, data_dir, threads) for _ in range(min(workers, len(tasks)))]
    pending = list(tasks)

    def dispatch(slot: _Slot) -> None:
        slot.task = pending.pop(0) if pending else None
        if slot.task is not None:
            begun = [driver.begin(config) for config in slot.task.configs]
            with contextlib.suppress(OSError):  # a worker dead already: its sentinel says so next
                slot.connection.send({"configs": [config.model_dump(mode="json") for config in slot.task.configs],
                                      "resumes": [resume for _, resume in begun],
                                      "attempts": [attempt for attempt, _ in begun]})

    def replace(slot: _Slot) -> None:
        """A lost worker costs only its runs' epochs since their last checkpoints: the runs go back
        to the front of the queue (until they have lost too many) and resume in a new process."""
        cause = slot.cause()
        retry = [config for config in (slot.task.configs if slot.task else []) if driver.worker_lost(config, cause)]
        if retry:
            pending.insert(0, Task(retry))
        slot.stop()
        slot.task = None
        if pending:
            slots[slots.index(slot)] = fresh = _Slot(context, data_dir, threads)
            dispatch(fresh)

    def in_flight() -> list[str]:
        return [run_id for slot in slots if slot.task is not None for run_id in slot.task.run_ids]

    try:
        for slot in slots:
            dispatch(slot)
        while any(slot.task is not None for slot in slots):
            busy = [slot for slot in slots if slot.task is not None]
            # A worker's pipe and its process sentinel: events, and its death, are seen at once.
            ready = set(wait([s.connection for s in busy] + [s.process.sentinel for s in busy]))
            for slot in busy:
                if slot.connection not in ready and slot.process.sentinel not in ready:
                    continue
                try:
                    events = slot.receive()
                except EOFError:
                    replace(slot)
                    continue
                for event in events:
                    if event["kind"] == "idle":
                        dispatch(slot)
                    else:
                        driver.handle(event)
                if slot.process.sentinel in ready and not events:
                    replace(slot)
    except KeyboardInterrupt:
        driver.interrupt(in_flight())
    except CnnlabError:
        # Bad input met by one run (or a checkpoint that cannot be read): the study stops as one
        # error; the other runs in flight stop with it and resume next time.
        with contextlib.suppress(StoreError):  # the store itself failing: they resume all the same
            driver.interrupt(in_flight(), "stopped with the study, on an error another run met")
        raise
    finally:
        for slot in slots:
            slot.stop()
