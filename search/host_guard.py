"""The front door of the web UIs that check no `Host:` header (TensorBoard, optuna-dashboard): a request
naming any host but this server's own address is refused with 403 before it reaches them.

Binding to 127.0.0.1 keeps other machines out, not web pages: a page whose domain is rebound to
127.0.0.1 talks to the server from the user's own browser, and without this check one DELETE from such
a page removed a sweep's Optuna study (issue 32). MLflow's server checks the header itself. The UI listens
on an inner port on 127.0.0.1; this forwards what passes, as it came, and answers 502 until the UI is up.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade"}


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host values a browser sends for this server: its address or localhost, with the port."""
    names = (host, "localhost") if host == "127.0.0.1" else (host,)
    return frozenset(f"{name}:{port}" for name in names)


def start_guard(host: str, port: int, inner: int) -> ThreadingHTTPServer:
    """Listen on host:port in a background thread, forwarding requests with an allowed Host to host:inner."""
    allowed = allowed_hosts(host, port)

    class Guard(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: object) -> None:  # the UI logs its own requests
            pass

        def _forward(self) -> None:
            if (self.headers.get("Host") or "").lower() not in allowed:
                self._answer(403, b"Forbidden: this server answers requests for " + ", ".join(sorted(allowed)).encode())
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            upstream = http.client.HTTPConnection(host, inner, timeout=300)
            try:
                upstream.request(self.command, self.path, body=body or None, headers={**headers, "Host": f"{host}:{inner}"})
                answer = upstream.getresponse()
                content = answer.read()
            except OSError:
                self._answer(502, b"the UI is not answering yet")
                return
            finally:
                upstream.close()
            self.send_response(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in HOP_BY_HOP | {"content-length"}:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

        def _answer(self, status: int, text: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _forward

    server = ThreadingHTTPServer((host, port), Guard)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
