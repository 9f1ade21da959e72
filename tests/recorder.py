"""A loopback proxy in front of the gateway that keeps what each client sends.

The client suite points every real client at it: each request is forwarded to the gateway as it
came (body, headers, path and query), its answer streamed back as it arrives, and a copy of the
request (method, path, headers without credentials, JSON body) kept in `requests`, the corpus
the fast unit tests hold the gateway's checks to (tests/clients/corpus)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

# Not forwarded either way: they describe one connection, not the request.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
}
CREDENTIALS = {"authorization", "x-api-key", "api-key", "x-goog-api-key"}


class Recorder:
    """`with Recorder(gateway_url) as proxy:` then point clients at `proxy.url`."""

    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=httpx.Timeout(120, connect=10))
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
                return

            def _forward(self) -> None:
                recorder._forward(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def taken(self) -> list[dict[str, Any]]:
        """What was recorded since the last call (and forgets it)."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = [(k, v) for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP]
        try:
            parsed: Any = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        with self._lock:
            self.requests.append(
                {
                    "method": handler.command,
                    "path": handler.path,
                    "headers": {
                        k.lower(): ("<redacted>" if k.lower() in CREDENTIALS else v)
                        for k, v in headers
                    },
                    "body": parsed,
                }
            )
        request = self._http.build_request(
            handler.command, self.target + handler.path, headers=headers, content=body
        )
        try:
            response = self._http.send(request, stream=True)
        except httpx.HTTPError:
            handler.send_error(502, "the gateway could not be reached")
            return
        try:
            handler.send_response(response.status_code)
            for name, value in response.headers.multi_items():
                if name.lower() not in HOP_BY_HOP:
                    handler.send_header(name, value)
            handler.send_header("transfer-encoding", "chunked")
            handler.end_headers()
            for piece in response.iter_raw():
                if piece:
                    handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client left; closing the upstream response stops the gateway's stream
        finally:
            response.close()
