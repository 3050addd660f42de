"""Walk-forward folds trained at once, one process per fold (`training.fold_workers`).

Every phase reseeds from (seed, fold, phase) and no fold reads what another writes, so the folds
are independent jobs. On a small CPU machine a second torch thread adds little to one day batch
(phase 0 on 2 cores: about 15%, docs/results.md, "What `make run` reports"), while two one-thread
processes, one per fold, train nearly twice as fast. The thread budget (`training.threads`, or the
machine's cores) is split between the workers: k workers get ``threads // k`` threads each, and a
budget of one thread trains the folds one after the other. A worker's numbers are those of the
sequential run with the same threads per process.

Workers are spawned (forking after torch's thread pools exist is unsafe), log through the
parent's handlers (Kedro's rich logging) and show no progress bar (two bars would overwrite each
other; the log line per epoch stays). CPU only: on CUDA the folds run one after the other.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

from atft_kedro.training.seeding import default_threads

log = logging.getLogger(__name__)


def worker_count(requested: int, threads: int | None, n_folds: int, device: str) -> int:
    """Processes to train ``n_folds`` folds with: at most one per fold and per thread of the
    budget (``threads``, None = the machine's cores); 1 on CUDA."""
    if device == "cuda":
        return 1
    return max(1, min(int(requested), threads or default_threads(), n_folds))


def train_in_processes(
    train_task: Callable[..., dict[str, dict[str, Any]]],
    tasks: Sequence[Any],
    job: Any,
    store: Any,
    workers: int,
) -> dict[str, dict[str, Any]]:
    """``train_task(task, worker_job, store)`` for every task in ``workers`` spawned processes;
    the records merged in task order. ``worker_job`` is ``job`` with ``threads // workers`` torch
    threads and no progress bar. An error in any worker is raised here once every worker stopped.
    """
    cfg = job.config
    threads = max(1, (cfg.threads or default_threads()) // workers)
    worker_job = replace(job, config=replace(cfg, threads=threads, progress_bar=False))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    listener = logging.handlers.QueueListener(
        queue, *logging.getLogger().handlers, respect_handler_level=True
    )
    level = logging.getLogger("atft_kedro").getEffectiveLevel()
    log.info(
        "training %d folds in %d processes, %d torch thread(s) each", len(tasks), workers, threads
    )
    listener.start()
    try:
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_log_to_queue, initargs=(queue, level)
        ) as pool:
            futures = [pool.submit(train_task, task, worker_job, store) for task in tasks]
            records: dict[str, dict[str, Any]] = {}
            for future in futures:
                records |= future.result()
        return records
    finally:
        listener.stop()


def _log_to_queue(queue: Any, level: int) -> None:
    """A worker's log records go to the parent's handlers through ``queue``."""
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(level)
