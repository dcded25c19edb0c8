"""Where sweep runs execute: inline, in a local process pool, or on a dask cluster.

Every choice is a :class:`concurrent.futures.Executor`, so the sweep code only uses
``submit`` and the futures it returns. Work items must be picklable: the sweep sends
each run as plain data (the scenario text and its settings) and the worker loads the
scenario itself.
"""

from __future__ import annotations

import importlib
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, ParamSpec, TypeVar

_P = ParamSpec("_P")
_T = TypeVar("_T")

#: Told to the user when ``--dask`` is asked for without dask installed.
DASK_HINT = "install requirements-dask.txt (.venv/bin/pip install -r requirements-dask.txt)"


class ExecutorUnavailable(RuntimeError):
    """The requested executor cannot be set up (dask missing, scheduler unreachable)."""


class InlineExecutor(Executor):
    """Runs each submitted call at once, in the calling thread.

    The default for ``--jobs 1``: no processes, so a debugger, a profiler or a
    traceback sees the run directly. The future it returns is already done.
    """

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Run ``fn(*args, **kwargs)`` now; its result or exception is in the future."""
        if self._shutdown:
            raise RuntimeError("cannot submit after shutdown")
        future: Future[_T] = Future()
        future.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:  # Ctrl-C (BaseException) stops the sweep instead
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse further submissions (nothing is ever pending)."""
        self._shutdown = True


class DaskExecutor(Executor):
    """A dask ``distributed`` client's executor that also closes the client on shutdown.

    The workers import :mod:`vmaviz` to run the engine, so it must be importable
    there: a :class:`distributed.LocalCluster` started from this checkout passes its
    ``sys.path`` on; workers on other machines need vmaviz (and its requirements)
    installed at the same version, or their results will not match a local run.

    Args:
        address: The scheduler, e.g. ``tcp://127.0.0.1:8786``.
        timeout: Seconds to wait for the scheduler to answer.

    Raises:
        ExecutorUnavailable: dask is not installed or the scheduler cannot be reached.
    """

    def __init__(self, address: str, timeout: float = 10.0) -> None:
        try:
            # Imported by name: dask is optional, so type checkers may not have it.
            distributed: Any = importlib.import_module("distributed")
        except ImportError:
            raise ExecutorUnavailable(f"--dask needs dask.distributed: {DASK_HINT}") from None
        try:
            self.client: Any = distributed.Client(address, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ExecutorUnavailable(
                f"cannot connect to the dask scheduler at {address}: {exc}"
            ) from None
        self._executor: Executor = self.client.get_executor()

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Send ``fn(*args, **kwargs)`` to the cluster."""
        return self._executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the executor and close the client (the cluster itself keeps running)."""
        try:
            # ClientExecutor.shutdown has no cancel_futures: wait=False cancels instead.
            self._executor.shutdown(wait=wait and not cancel_futures)
        finally:
            self.client.close()


def make_executor(jobs: int = 1, dask_address: str | None = None) -> Executor:
    """The executor for ``--jobs N`` / ``--dask ADDRESS``.

    Args:
        jobs: Parallel runs on this machine: 1 runs inline, more uses a process pool.
        dask_address: A dask scheduler address; when given, ``jobs`` is ignored.

    Returns:
        An executor; the caller shuts it down.

    Raises:
        ValueError: ``jobs`` below 1.
        ExecutorUnavailable: ``dask_address`` given but dask is missing or unreachable.
    """
    if dask_address is not None:
        return DaskExecutor(dask_address)
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if jobs == 1:
        return InlineExecutor()
    # spawn rather than fork: the parent may hold threads (a Dash server, a dask
    # client), and forking a threaded process can copy a held lock into the child.
    return ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_ignore_sigint,
    )


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C is the parent's to handle (see :func:`stop_now`).

    Otherwise the terminal's SIGINT reaches every worker too, and an idle one dies
    printing a traceback while a busy one files the interrupt as its run's result.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_now(executor: Executor) -> None:
    """Shut ``executor`` down at once: cancel queued runs and stop running ones.

    For an interrupted sweep. A plain ``shutdown`` would first finish the runs already
    handed to worker processes, which can take as long as the sweep itself.
    """
    if isinstance(executor, ProcessPoolExecutor):
        # No public way to stop busy workers before Python 3.14 (terminate_workers).
        workers = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.join(timeout=5)
        return
    executor.shutdown(wait=False, cancel_futures=True)
