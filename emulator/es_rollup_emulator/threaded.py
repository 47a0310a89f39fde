"""Synchronous front ends: the emulator on a background event-loop thread.

* :class:`LoopThread` — one event loop in one daemon thread; several emulators can share it.
* :class:`EmulatorThread` — an :class:`~.emulator.ElasticsearchEmulator` whose control methods
  are plain, thread-safe synchronous methods (each call is marshalled into the loop and waits for
  its result).
* :class:`EmulatorPool` — ``n`` emulators on one shared loop thread (e.g. 10 endpoints for a
  benchmark).

::

    with EmulatorThread(version="9.1.0", auto_trigger=False) as emu:
        emu.add_job("j1", state="indexing", page_duration=0.2)
        es = Elasticsearch(emu.url)
        ...

    with EmulatorPool(10, seed_jobs=100) as pool:
        urls = pool.urls
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Iterator

from .emulator import ElasticsearchEmulator

# Methods of ElasticsearchEmulator exposed synchronously.
SYNC_METHODS = (
    "set_latency", "set_not_elasticsearch", "fail_next", "clear_faults", "go_down", "come_up", "down_for",
    "restart", "oob_start", "oob_stop", "oob_delete", "set_user", "set_user_password", "remove_user",
    "set_api_key", "revoke_api_key", "requests", "count", "clear_requests", "create_index",
    "put_index_template", "create_data_stream", "index_docs", "rollup_now", "run_ilm", "documents",
    "seed_rollup_usage", "add_job", "seed_jobs", "job_state", "job_stats", "job_ids", "get_job", "trigger",
    "trigger_all", "force_state", "set_timing", "set_job_timing", "set_auto_trigger", "wait_for_state", "info",
    "fail_job",  # OpenSearch dialect only (seed_jobs, job_state and the request log work on both)
)


class LoopThread:
    """An asyncio event loop running forever in a daemon thread."""

    def __init__(self, name: str = "es-emulator-loop"):
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()
        self._users = 0
        self._lock = threading.Lock()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a coroutine in the loop and wait for its result."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("LoopThread.run called from its own loop thread; use the async API there")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` inside the loop (awaiting it if it is a coroutine function)."""
        async def invoke() -> Any:
            result = fn(*args, **kwargs)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        return self.run(invoke())

    def acquire(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users <= 0
        if last:
            self.stop()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class EmulatorThread:
    """An emulator on a background loop with synchronous, thread-safe control methods.

    Takes the same keyword arguments as :class:`ElasticsearchEmulator`, plus ``host``/``port``
    and ``loop_thread`` (share a :class:`LoopThread` between several emulators). Every name in
    :data:`SYNC_METHODS` is available as a blocking method; attributes such as ``url``,
    ``port``, ``ca_pem``, ``ca_file`` and ``version`` are read through."""

    def __init__(self, *args: Any, host: str = "127.0.0.1", port: int = 0,
                 loop_thread: LoopThread | None = None, **kwargs: Any):
        self._own_loop = loop_thread is None
        self.loop_thread = loop_thread or LoopThread()
        self.loop_thread.acquire()
        self._host, self._port = host, port
        if kwargs.pop("distribution", "elasticsearch") == "opensearch":  # the OpenSearch dialect (opensearch_http.py)
            from .opensearch_http import OpenSearchEmulator

            self.emulator = self.loop_thread.call(lambda: OpenSearchEmulator(*args, **kwargs))  # type: ignore[assignment]
        else:
            self.emulator = self.loop_thread.call(lambda: ElasticsearchEmulator(*args, **kwargs))
        self._started = False

    def start(self) -> "EmulatorThread":
        if not self._started:
            self.loop_thread.call(self.emulator.start, self._host, self._port)
            self._started = True
        return self

    def close(self) -> None:
        if self._started:
            self.loop_thread.call(self.emulator.close)
            self._started = False
        if self.loop_thread is not None:
            self.loop_thread.release()
            self.loop_thread = None  # type: ignore[assignment]

    def __enter__(self) -> "EmulatorThread":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        if name in SYNC_METHODS:
            method = getattr(self.emulator, name)

            def call(*args: Any, **kwargs: Any) -> Any:
                return self.loop_thread.call(method, *args, **kwargs)
            call.__name__ = name
            call.__doc__ = method.__doc__
            return call
        if name.startswith("_") or "emulator" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["emulator"], name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(SYNC_METHODS))


class EmulatorPool:
    """``n`` emulators sharing one background loop thread."""

    def __init__(self, n: int, *args: Any, host: str = "127.0.0.1", **kwargs: Any):
        self.loop_thread = LoopThread()
        self.loop_thread.acquire()
        self.emulators = [EmulatorThread(*args, host=host, loop_thread=self.loop_thread, **kwargs) for _ in range(n)]

    def start(self) -> "EmulatorPool":
        for e in self.emulators:
            e.start()
        return self

    def close(self) -> None:
        for e in self.emulators:
            e.close()
        if self.loop_thread is not None:
            self.loop_thread.release()
            self.loop_thread = None  # type: ignore[assignment]

    @property
    def urls(self) -> list[str]:
        return [e.url for e in self.emulators]

    def __enter__(self) -> "EmulatorPool":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getitem__(self, i: int) -> EmulatorThread:
        return self.emulators[i]

    def __len__(self) -> int:
        return len(self.emulators)

    def __iter__(self) -> Iterator[EmulatorThread]:
        return iter(self.emulators)
