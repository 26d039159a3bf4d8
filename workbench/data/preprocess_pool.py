"""Process videos in spawned worker processes; a worker that dies fails only the videos it may have held,
and a fresh pool takes the rest. The same per-process state serves the in-process path (one worker)."""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import cv2

from workbench.data.faces import FaceDetector
from workbench.data.preprocess_video import PreprocessConfig, VideoResult, discard_output, process_video

_worker: dict[str, object] = {}


def init_worker(
    videos_dir: Path,
    out_dir: Path,
    config: PreprocessConfig,
    masks_dir: Path | None,
    factory: Callable[[], FaceDetector],
) -> None:
    # The detector is built on first use, inside the error handling: a pool initializer that raises
    # breaks the pool.
    _worker.update(videos_dir=videos_dir, out_dir=out_dir, config=config, masks_dir=masks_dir, factory=factory)
    _worker["detector"] = None


def _init_pool_worker(*initargs: object) -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would oversubscribe
    init_worker(*initargs)


def process_safely(rel: Path) -> VideoResult:
    """Process one video in a worker; any failure becomes a reported result instead of ending the run."""
    try:
        if _worker["detector"] is None:
            _worker["detector"] = _worker["factory"]()
        return process_video(
            _worker["videos_dir"], rel, _worker["out_dir"], _worker["config"], _worker["detector"], _worker["masks_dir"]
        )
    except Exception as exc:  # noqa: BLE001 — one bad video must not stop the others; the error is reported
        return VideoResult(rel.with_suffix("").as_posix(), error=f"{type(exc).__name__}: {exc}")


def process_in_workers(todo: list[Path], workers: int, initargs: tuple) -> Iterator[VideoResult]:
    """The results of ``todo`` processed by spawned workers; after a worker dies, a fresh pool takes the rest."""
    remaining = deque(todo)
    while remaining:
        yield from _run_pool(remaining, min(workers, len(remaining)), initargs)


def _run_pool(remaining: deque[Path], workers: int, initargs: tuple) -> Iterator[VideoResult]:
    """Process videos taken from ``remaining`` in one pool, until none is left or a worker dies.

    At most ``workers`` videos are submitted at a time, so the videos in flight when a worker dies
    (a crash, ``os._exit``, the out-of-memory killer) are the ones it may have been processing: the
    pool fails them all, and they are reported as failed, their partial crops deleted.
    """
    # Spawned, not forked: forking a process whose OpenCV/FFmpeg threads have run can deadlock the
    # child (seen here: a forked worker hung in cv2.setNumThreads after the parent had used Haar).
    context = multiprocessing.get_context("spawn")
    in_flight: dict[Future[VideoResult], Path] = {}
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_pool_worker, initargs=initargs) as pool:
        while remaining or in_flight:
            _submit(pool, remaining, in_flight, workers)
            if not in_flight:  # the pool broke between two videos: the caller starts a fresh one
                return
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            if any(isinstance(future.exception(), BrokenProcessPool) for future in done):
                wait(in_flight)  # a broken pool fails every video still in flight
                break
            for future in done:
                del in_flight[future]
                yield future.result()
    lost = sorted(rel for future, rel in in_flight.items() if isinstance(future.exception(), BrokenProcessPool))
    yield from (future.result() for future, rel in in_flight.items() if rel not in lost)
    out_dir = initargs[1]  # init_worker's second argument
    for rel in lost:
        discard_output(out_dir, rel)  # the pool is shut down: no worker writes there any more
        yield VideoResult(rel.with_suffix("").as_posix(), error=_died_in_flight(rel, lost))


def _submit(
    pool: ProcessPoolExecutor, remaining: deque[Path], in_flight: dict[Future[VideoResult], Path], workers: int
) -> None:
    """Submit videos from ``remaining`` until ``workers`` are in flight, or the pool turns out broken."""
    while remaining and len(in_flight) < workers:
        try:
            future = pool.submit(process_safely, remaining[0])
        except BrokenProcessPool:
            return
        in_flight[future] = remaining.popleft()


def _died_in_flight(rel: Path, lost: list[Path]) -> str:
    """Why ``rel`` failed when its pool broke, with ``lost`` all the videos in flight then."""
    others = [str(other) for other in lost if other != rel]
    with_others = f" (in flight with {', '.join(others)}: one of them caused it)" if others else ""
    return (
        f"BrokenProcessPool: a worker process died abruptly (a crash, os._exit or the out-of-memory killer) "
        f"while {rel} was being processed{with_others}; rerun to retry"
    )
