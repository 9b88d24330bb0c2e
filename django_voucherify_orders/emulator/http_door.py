"""The HTTP door: a real HTTP/1.1 server in front of the emulator, for other processes.

Speed matters here (a client test suite or a bench may send thousands of requests), and
the classic trap is Nagle's algorithm meeting delayed ACKs: a response written as headers
then body, in two small segments, waits ~40 ms for the client's ACK, capping a keep-alive
connection at ~25 requests per second. So every response goes out in ONE write, and
TCP_NODELAY is set on each accepted socket.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from .errors import ApiError, status_phrase
from .faults import DroppedConnection
from .util import dumps, new_request_id

if TYPE_CHECKING:
    from .app import Emulator


_MAX_LINE = 65536
_MAX_HEADERS = 100
_JSON = {"Content-Type": "application/json; charset=utf-8"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck keep-alive client must not keep the process alive
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator
        self.verbose = verbose
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def track(self, sock: socket.socket, is_open: bool) -> None:
        with self._open_lock:
            (self._open.add if is_open else self._open.discard)(sock)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-response is normal for a test server; anything else
        # is an emulator bug and gets the stdlib's traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive sockets, so shutdown is prompt."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server
    server_version = "voucherify-emulator"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def handle_one_request(self) -> None:
        """Read one request and answer it.

        Replaces the stdlib's parse_request: its email-based header parser costs more than
        the emulator's whole handling of a request, so headers are split by hand here.
        """
        try:
            line = self.rfile.readline(_MAX_LINE + 1)
        except OSError:  # reset by the client, or woken by shutdown()
            line = b""
        if not line:
            self.close_connection = True
            return
        self.raw_requestline = line
        self.requestline = line.decode("latin-1").rstrip("\r\n")
        parts = self.requestline.split()
        headers = self._read_headers()
        if len(line) > _MAX_LINE or len(parts) != 3 or headers is None:
            self.command, self.request_version = "GET", "HTTP/1.1"
            self.close_connection = True
            self._write(400, _JSON, dumps({"code": 400, "message": "Bad Request"}))
            return
        self.command, self.path, self.request_version = parts
        connection = headers.get("connection", "").lower()
        if self.request_version == "HTTP/1.1":
            self.close_connection = connection == "close"
        else:
            self.close_connection = connection != "keep-alive"
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits for this
        self._serve(headers)

    def _read_headers(self) -> dict[str, str] | None:
        """Header names lower-cased (HTTP names are case-insensitive); None if malformed."""
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self.rfile.readline(_MAX_LINE + 1)
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or len(line) > _MAX_LINE:
                return None
            headers[name.strip().lower()] = value.strip()
        return None

    def _serve(self, headers: dict[str, str]) -> None:
        body = self._read_body(headers)
        try:
            reply = self.server.emulator.handle(self.command, self.path, headers, body)
        except DroppedConnection:
            self.close_connection = True  # close without a byte of response
            return
        except Exception:
            traceback.print_exc(file=sys.stderr)
            error = ApiError(500, "internal_error", "Internal Server Error", "Emulator error")
            self._write(500, _JSON, dumps(error.body(new_request_id())))
            return
        self._write(reply.status, reply.headers, reply.body)

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        declared = headers.get("content-length", "0")
        length = int(declared) if declared.isdigit() else 0
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, status: int, headers: dict[str, str], body: bytes) -> None:
        lines = [f"HTTP/1.1 {status} {status_phrase(status)}", f"Server: {self.server_version}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        # One write per response: see the module docstring.
        self.wfile.write(head if self.command == "HEAD" else head + body)
        if self.server.verbose:
            self.log_message('"%s" %s %s', self.requestline, status, len(body))

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class EmulatorServer:
    """A running HTTP door. Use as a context manager or call shutdown()."""

    def __init__(self, emulator: Emulator, host: str, port: int, verbose: bool = False) -> None:
        self._server = _Server((host, port), emulator, verbose)
        self.host = host
        self.port: int = self._server.server_address[1]
        shown_host = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104
        self.url = f"http://{shown_host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"voucherify-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EmulatorServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


def serve(
    emulator: Emulator, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False
) -> EmulatorServer:
    server = EmulatorServer(emulator, host, port, verbose)
    # Export download links must point at this server, so the URLs follow it.
    emulator.url = emulator.base_url = emulator.download_url = server.url
    return server
