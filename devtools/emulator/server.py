"""Socket plumbing: a threading HTTP/1.1 server (optionally TLS) that turns wire traffic into Request/Response calls.

TLS is negotiated in each connection's own thread, so a slow or broken client never blocks the accept loop; every
answer carries Content-Length so pooled keep-alive clients (requests.Session) reuse connections.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import ArmError
from .wire import Request, Response

logger = logging.getLogger(__name__)

App = Callable[[Request], Response]
MAX_BODY = 1024 * 1024
_HANDSHAKE_TIMEOUT = 10.0
_IDLE_TIMEOUT = 60.0
_QUIET = (ConnectionError, TimeoutError, ssl.SSLError, OSError)


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, host: str, port: int, app: App, tls: ssl.SSLContext | None, stopping: threading.Event
    ) -> None:
        super().__init__((host, port), _Handler)
        self.app = app
        self.tls = tls
        self.stopping = stopping
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        conn: socket.socket = request
        try:
            # Headers and body leave in separate writes; without NODELAY, Nagle and delayed ACKs add 40 ms to each.
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                conn.settimeout(_HANDSHAKE_TIMEOUT)
                conn = self.tls.wrap_socket(conn, server_side=True)
        except _QUIET:
            conn.close()
            return
        with self._open_lock:
            self._open.add(conn)
        try:
            _Handler(conn, client_address, self)
        finally:
            with self._open_lock:
                self._open.discard(conn)
            conn.close()

    def close_connections(self) -> None:
        """Hang up on idle keep-alive clients so their handler threads end with the server."""
        with self._open_lock:
            connections = list(self._open)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], _QUIET):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "BackupEmulator"
    sys_version = ""
    timeout = _IDLE_TIMEOUT
    server: HttpServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            return
        try:
            response = self.server.app(Request.build(self.command, self.path, dict(self.headers.items()), body))
        except Exception:
            # A bug in the emulator must still answer, as ARM's front door would, rather than hang the client.
            logger.exception("emulator failed on %s %s", self.command, self.path)
            response = ArmError(500, "InternalServerError", "The emulator failed on this request.").to_response()
        if response.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if response.delay > 0 and self.server.stopping.wait(response.delay):
            self.close_connection = True
            return
        self._write(response)

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._write(ArmError(411, "LengthRequired", "Send Content-Length, not chunked bodies.").to_response())
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._write(ArmError(400, "InvalidRequestContent", "Bad or too large Content-Length.").to_response())
            self.close_connection = True
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # The client went away mid-body (killed, or its connection dropped): nothing to answer.
            self.close_connection = True
            return None
        return body

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.status not in (204, 304) and response.body:
            self.wfile.write(response.body)
