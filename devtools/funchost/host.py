"""``FunctionHost``: the local stand-in for the Functions host and Python worker, for queue and HTTP triggers.

``start()`` reads host.json and every function.json, imports and checks each function (raising
``ConfigError`` / ``FunctionLoadError`` before touching storage), creates the trigger, poison and
output queues, and starts one listener per queue function, a shared worker pool and the lease
keeper, and one loopback HTTP server for the HTTP functions (``http_port``; see ``httpfront``).
``stop()`` stops serving and polling, hands back messages not yet started, waits (bounded) for
running invocations, and hands back whatever is still running after that.

Settings: with ``environ=None`` the process environment is the source of app settings and
local.settings.json ``Values`` are exported into it (environment wins). With an ``environ``
mapping, that mapping layered over ``Values`` is the host's view, and ``os.environ`` is untouched.
App settings ``AzureFunctionsJobHost__<path>`` override host.json values (see ``hostconfig``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueMessage as StorageMessage

from devtools.funchost.appsettings import AppSettings, apply_to_environ, read_local_settings
from devtools.funchost.connections import QueueConnections
from devtools.funchost.hostconfig import OVERRIDE_PREFIX, HostConfig, load_host_config
from devtools.funchost.httpfront import HttpFront
from devtools.funchost.inflight import DEFAULT_LEASE_SECONDS, InFlight, LeaseKeeper
from devtools.funchost.listener import QueueListener
from devtools.funchost.loader import LoadedFunction, load_function
from devtools.funchost.metadata import discover
from devtools.funchost.pool import Task, WorkerPool
from devtools.funchost.processor import MessageProcessor
from devtools.funchost.queueops import ensure_queue
from devtools.funchost.routes import parse_route

__all__ = ["DEFAULT_DRAIN_SECONDS", "FunctionHost"]

logger = logging.getLogger(__name__)

DEFAULT_DRAIN_SECONDS = 30.0


class FunctionHost:
    def __init__(
        self,
        app_root: Path | str,
        environ: Mapping[str, str] | None = None,
        *,
        settings_file: Path | str | None = None,
        load_local_settings: bool = True,
        functions: Sequence[str] | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
        http_port: int = 0,
    ) -> None:
        """``http_port`` 0 picks a free port (``python -m devtools.funchost`` uses Core Tools' 7071)."""
        if lease_seconds < 1:
            raise ValueError("lease_seconds must be at least 1: the service counts visibility in whole seconds")
        self.app_root = Path(app_root).resolve()
        self._environ = environ
        self._settings_file = Path(settings_file) if settings_file is not None else None
        self._load_local_settings = load_local_settings
        self._only = tuple(functions) if functions is not None else None
        self._lease_seconds = lease_seconds
        self._drain_seconds = drain_seconds
        self._http_port = http_port
        self._http: HttpFront | None = None
        self._listeners: dict[str, QueueListener] = {}
        self._processors: dict[str, MessageProcessor] = {}
        self._connections: QueueConnections | None = None
        self._pool: WorkerPool | None = None
        self._keeper: LeaseKeeper | None = None
        self._lock = threading.Lock()
        self.config: HostConfig | None = None
        self.functions: tuple[LoadedFunction, ...] = ()

    def __enter__(self) -> FunctionHost:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def function_names(self) -> tuple[str, ...]:
        return tuple(function.name for function in self.functions)

    @property
    def http_port(self) -> int | None:
        """The loopback port HTTP triggers are served on; None when the app has none."""
        return self._http.port if self._http is not None else None

    def start(self) -> None:
        if self._listeners or self._http is not None:
            raise RuntimeError("the host is already started")
        settings = self._settings()
        overrides = settings.section(OVERRIDE_PREFIX)
        self.config = load_host_config(self.app_root, overrides=overrides)
        for path, value in sorted(overrides.items()):
            logger.info("host.json %s overridden by app setting %s__%s=%s", path, OVERRIDE_PREFIX, path, value)
        only = self._only if self._only is not None else self.config.functions
        loaded = []
        for metadata in discover(self.app_root, settings, only):
            if not metadata.runnable:
                logger.warning(
                    "%s: %s triggers are not run by this host; skipping", metadata.name, metadata.trigger.type
                )
                continue
            loaded.append(load_function(metadata, self.app_root))
        self.functions = tuple(loaded)
        if not self.functions:
            logger.warning("no queue- or HTTP-triggered functions to run in %s", self.app_root)
        queued = [function for function in self.functions if not function.metadata.is_http]
        served = [
            (function, parse_route(function.name, trigger.properties.get("route"), trigger.properties.get("methods"),
                                   trigger.properties.get("authLevel"), self.config.http_route_prefix))
            for function in self.functions
            if function.metadata.is_http
            for trigger in (function.metadata.trigger,)
        ]
        # Every client is built before any thread starts: a bad connection setting fails here, cleanly.
        self._connections = QueueConnections(settings)
        for function in queued:
            self._wire(function)
        if served:
            self._http = HttpFront(served, self._http_port)
        queues = self.config.queues
        pool_size = settings.positive_int("PYTHON_THREADPOOL_THREAD_COUNT") or queues.batch_size
        self._pool = WorkerPool(pool_size)
        self._keeper = LeaseKeeper(self._lease_seconds, self.config.function_timeout, self._time_out)
        self._create_queues(queued)
        self._keeper.start()
        for listener in self._listeners.values():
            listener.start()
        if self._http is not None:
            self._http.start()
        logger.info(
            "host started: %s (batchSize %d, newBatchThreshold %d, maxDequeueCount %d, encoding %s, %d threads)",
            ", ".join(
                f"{f.name} <- {f.metadata.trigger.queue_name}" if not f.metadata.is_http
                else f"{f.name} <- http://127.0.0.1:{self.http_port}" for f in self.functions
            ) or "no functions",
            queues.batch_size,
            queues.new_batch_threshold,
            queues.max_dequeue_count,
            queues.message_encoding.value,
            pool_size,
        )

    def stop(self, timeout: float | None = None) -> int:
        """Stop; returns how many invocations were still running at the deadline."""
        drain = self._drain_seconds if timeout is None else timeout
        if self._http is not None:
            self._http.stop()
        for listener in self._listeners.values():
            listener.stop()
        for listener in self._listeners.values():
            listener.join(timeout=35)
        if self._pool is None or self._keeper is None:
            return 0
        for task in self._pool.take_back():
            task.cancel()
        drained = self._keeper.wait_until_empty(drain)
        stuck = self._keeper.held()
        if not drained:
            logger.warning("%d invocation(s) still running after %.0fs; handing their messages back", len(stuck), drain)
            for item in stuck:
                processor = self._processors[item.function_name]
                try:
                    processor.release_unstarted(item)
                except AzureError as exc:
                    logger.error("%s: could not hand back message %s: %s", item.function_name, item.message.id, exc)
        self._keeper.stop()
        self._pool.close()
        if self._connections is not None:
            self._connections.close()
        logger.info("host stopped")
        return len(stuck) if not drained else 0

    def _settings(self) -> AppSettings:
        values: dict[str, str] = {}
        path = self._settings_file or self.app_root / "local.settings.json"
        if self._load_local_settings and (self._settings_file is not None or path.is_file()):
            values = read_local_settings(path)
            logger.info("app settings from %s", path)
        if self._environ is not None:
            return AppSettings.layered(values, self._environ)
        # Functions read os.environ, exactly as they read app settings in Azure.
        apply_to_environ(values)
        return AppSettings(dict(os.environ))

    def _wire(self, function: LoadedFunction) -> None:
        assert self._connections is not None and self.config is not None
        trigger = function.metadata.trigger
        queue = self._connections.queue(trigger.connection, trigger.queue_name)
        poison = self._connections.queue(trigger.connection, f"{trigger.queue_name}-poison")
        outputs = {
            binding.name: self._connections.queue(binding.connection, binding.queue_name)
            for binding in function.metadata.outputs
        }
        processor = MessageProcessor(
            function, self.config.queues, poison, outputs, self._wake, self.config.function_timeout
        )
        listener = QueueListener(
            function.name,
            queue,
            self.config.queues,
            self._lease_seconds,
            lambda message: self._dispatch(function.name, message),
        )
        self._processors[function.name] = processor
        self._listeners[function.name] = listener

    def _create_queues(self, functions: list[LoadedFunction]) -> None:
        assert self._connections is not None
        names = set()
        for function in functions:
            trigger = function.metadata.trigger
            names.add((trigger.connection, trigger.queue_name))
            names.add((trigger.connection, f"{trigger.queue_name}-poison"))
            names.update((binding.connection, binding.queue_name) for binding in function.metadata.outputs)
        for connection, name in sorted(names):
            try:
                ensure_queue(self._connections.queue(connection, name))
            except AzureError as exc:
                # Storage may come up later (Azurite restarting); the listeners keep trying.
                logger.warning("could not create queue %s now: %s", name, exc)

    def _dispatch(self, function_name: str, message: StorageMessage) -> None:
        assert self._pool is not None and self._keeper is not None
        listener = self._listeners[function_name]
        processor = self._processors[function_name]
        item = InFlight(function_name, listener.queue, message, self._lease_seconds)
        keeper = self._keeper

        def finished(done: InFlight) -> None:
            keeper.discard(done)
            listener.finished_one()

        item.on_finished = finished
        keeper.add(item)

        def cancel() -> None:
            try:
                processor.release_unstarted(item)
            except AzureError as exc:
                logger.error("%s: could not hand back message %s: %s", function_name, message.id, exc)
            finally:
                item.finish()

        task = Task(run=lambda: processor.process(item), cancel=cancel)
        if not self._pool.submit(task):  # shutting down: hand the message straight back
            task.cancel()

    def _wake(self, queue_name: str) -> None:
        for listener in self._listeners.values():
            if listener.queue.queue_name == queue_name:
                listener.wake()

    def _time_out(self, item: InFlight) -> None:
        self._processors[item.function_name].time_out(item)
