"""The process's HTTP sessions: pooled for the host's concurrency, reading the environment once per origin.

``requests`` consults the environment on every call: ``Session.merge_environment_settings``
asks ``get_environ_proxies``, which walks all of ``os.environ`` twice (``getproxies`` and the
``NO_PROXY`` test). A function app's environment holds every app setting and platform variable;
with 115 variables that is ~0.9 ms of CPU per call on this project's CI machine, and a trigger
makes half a dozen calls. A worker's environment does not change while it runs, so the answer
is kept per origin. Everything else ``requests`` reads from the environment still is read per
call, exactly as ``requests.Session`` does.

The Azure SDK clients (queues, the ledger's table) get these sessions through
``sdk_transport``; ARM calls use one directly.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

__all__ = ["POOL_SIZE", "EnvironmentOnceSession", "pooled_session", "sdk_transport"]

POOL_SIZE = 32
"""Pooled connections per host: the host's concurrent invocations (batchSize + newBatchThreshold) and more."""


class EnvironmentOnceSession(requests.Session):
    """A ``requests.Session`` that looks up the environment's proxies for an origin once."""

    def __init__(self) -> None:
        super().__init__()
        # No lock: two threads that race for a new origin compute the same answer.
        self._proxies_by_origin: dict[tuple[str, str, str | None], dict[str, str]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:  # the stubs' private TypedDict: proxies, stream, verify, cert
        # requests 2.x's own steps, in its order; only the proxy lookup is remembered.
        if self.trust_env:
            no_proxy = proxies.get("no_proxy") if proxies is not None else None
            if proxies is not None:
                for scheme, proxy in self._environment_proxies(str(url), no_proxy).items():
                    proxies.setdefault(scheme, proxy)
            if verify is True or verify is None:
                verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or verify
        return {
            "proxies": merge_setting(proxies, self.proxies),  # type: ignore[no-untyped-call]
            "stream": merge_setting(stream, self.stream),  # type: ignore[no-untyped-call]
            "verify": merge_setting(verify, self.verify),  # type: ignore[no-untyped-call]
            "cert": merge_setting(cert, self.cert),  # type: ignore[no-untyped-call]
        }

    def _environment_proxies(self, url: str, no_proxy: str | None) -> dict[str, str]:
        parts = urlsplit(url)
        origin = (parts.scheme.lower(), parts.netloc.lower(), no_proxy)
        found = self._proxies_by_origin.get(origin)
        if found is None:
            found = self._proxies_by_origin[origin] = get_environ_proxies(url, no_proxy=no_proxy)
        return found  # only read: its entries are copied into the caller's proxies


def pooled_session(pool_size: int = POOL_SIZE) -> EnvironmentOnceSession:
    """A session with ``pool_size`` connections per host and no transport retries.

    No retries below the caller: a repeated trigger POST would spend the item's daily quota, and
    the SDK clients retry by their own policies (which know which writes may be repeated).
    """
    session = EnvironmentOnceSession()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def sdk_transport(*, connection_timeout: float, read_timeout: float) -> RequestsTransport:
    """An Azure SDK transport over a new pooled session, kept for the process's life.

    A client given a transport no longer applies its own ``connection_timeout`` and
    ``read_timeout`` options: the transport carries them.
    """
    return RequestsTransport(
        session=pooled_session(), session_owner=False, connection_timeout=connection_timeout,
        read_timeout=read_timeout,
    )
