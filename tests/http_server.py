"""A tiny local HTTP server for download tests: serves in-memory files on 127.0.0.1.

Supports ``Range: bytes=N-`` (206 + Content-Range), and switches to misbehave the ways real
servers do: ignore Range (answer 200), cut the connection after K bytes once, or answer 404.
Every request is recorded as ``(path, Range header or None)``.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Server:
    files: dict[str, bytes]
    ignore_range: bool = False
    cut_after: int | None = None  # send only this many body bytes on the next request, once
    not_found: bool = False  # answer 404 to everything
    port: int = 0
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
            range_header = self.headers.get("Range")
            server.requests.append((self.path, range_header))
            data = server.files.get(self.path)
            if server.not_found or data is None:
                self.send_error(404)
                return
            start = 0
            m = re.fullmatch(r"bytes=(\d+)-", range_header or "")
            if m and not server.ignore_range:
                start = int(m[1])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            # The full length is announced even when the body is cut, like a dropped connection.
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if server.cut_after is not None:
                cut, server.cut_after = server.cut_after, None
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # keep test output clean

    return Handler


@contextlib.contextmanager
def serve(
    files: dict[str, bytes],
    *,
    ignore_range: bool = False,
    cut_after: int | None = None,
    not_found: bool = False,
) -> Iterator[Server]:
    """Serve ``files`` ({"/path": bytes}) on an ephemeral port of 127.0.0.1 while in the block.

    The yielded :class:`Server` gives ``url(path)`` and ``requests``; its switches can be
    flipped inside the block.
    """
    state = Server(dict(files), ignore_range=ignore_range, cut_after=cut_after, not_found=not_found)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    # A short poll interval so that leaving the block (shutdown) takes milliseconds, not 0.5 s.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
