"""A static HTTP server on 127.0.0.1 for tests: serves a folder with HTTP Range support.

GDAL's ``/vsicurl/`` (COG reads), resumable downloads and STAC clients all need byte ranges,
which ``http.server`` alone does not serve. Every request is logged in ``server.requests`` so
tests can assert on what a client really fetched.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class LoggedRequest:
    method: str
    path: str
    range: str | None
    status: int


class _RangeHandler(SimpleHTTPRequestHandler):
    server: "LocalHTTPServer"

    def log_message(self, format, *args):  # noqa: A002 - silence stderr
        pass

    def _log(self, status: int) -> None:
        self.server.requests.append(LoggedRequest(self.command, self.path, self.headers.get("Range"), status))

    def send_head(self):  # noqa: C901 - mirrors SimpleHTTPRequestHandler.send_head
        path = self.translate_path(self.path.split("?", 1)[0])
        if self.server.fail_paths.get(self.path.split("?", 1)[0]):
            code = self.server.fail_paths[self.path.split("?", 1)[0]]
            self._log(code)
            self.send_error(code)
            return None
        if os.path.isdir(path) or not os.path.isfile(path):
            self._log(404)
            self.send_error(404, "File not found")
            return None
        size = os.path.getsize(path)
        f = open(path, "rb")
        rng = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng or "")
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else size - 1
            else:
                start, end = max(0, size - int(m.group(2))), size - 1
            end = min(end, size - 1)
            if start >= size:
                f.close()
                self._log(416)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return None
            f.seek(start)
            length = end - start + 1
            self._log(206)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            length = size
            self._log(200)
            self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = length
        return f

    def copyfile(self, source, outputfile):
        remaining = getattr(self, "_remaining", None)
        limit = self.server.truncate_after
        sent = 0
        while remaining is None or remaining > 0:
            chunk = source.read(min(64 * 1024, remaining) if remaining is not None else 64 * 1024)
            if not chunk:
                break
            if limit is not None and sent + len(chunk) > limit:
                outputfile.write(chunk[: max(0, limit - sent)])
                self.close_connection = True
                return
            outputfile.write(chunk)
            sent += len(chunk)
            if remaining is not None:
                remaining -= len(chunk)


class LocalHTTPServer(ThreadingHTTPServer):
    """Serve ``root`` on 127.0.0.1 at a free port; use as a context manager.

    ``fail_paths`` maps URL paths to an HTTP error status to return; ``truncate_after`` cuts
    every response body after that many bytes (to test resumed downloads).
    """

    daemon_threads = True

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.requests: list[LoggedRequest] = []
        self.fail_paths: dict[str, int] = {}
        self.truncate_after: int | None = None
        handler = lambda *a, **kw: _RangeHandler(*a, directory=str(self.root), **kw)  # noqa: E731
        super().__init__(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "LocalHTTPServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
