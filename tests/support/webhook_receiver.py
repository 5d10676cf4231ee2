"""A recipient's webhook for tests: a real HTTP server on a free port that checks each POST's
X-Lethe-Signature (HMAC-SHA256 of the raw body under the shared key, computed here independently of
Lethe's code) and answers with the next scripted status (200 once the script runs out)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    path: str
    body: bytes
    headers: dict[str, str]
    signature_ok: bool
    answered: int

    @property
    def notice(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    url: str
    key: bytes | Callable[[], bytes]  # a callable: read when the first notice arrives
    script: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    def delivered(self) -> list[Delivery]:
        """The POSTs it accepted: a valid signature, answered 2xx."""
        return [d for d in self.deliveries if d.signature_ok and 200 <= d.answered < 300]


@contextmanager
def webhook_receiver(key: bytes | Callable[[], bytes], script: list[int] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(url="", key=key, script=list(script or []))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            key = receiver.key() if callable(receiver.key) else receiver.key
            expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
            signature_ok = hmac.compare_digest(self.headers.get("X-Lethe-Signature", ""), expected)
            with lock:
                status = receiver.script.pop(0) if receiver.script else 200
                if not signature_ok:
                    status = 401
                receiver.deliveries.append(Delivery(self.path, body, dict(self.headers), signature_ok, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/lethe"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
