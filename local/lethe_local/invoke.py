"""`python -m lethe_local.invoke FN EVENT` (`make invoke`): run one function on the running local
stack with an event file, wait until the queues are drained, and print the function's result.

The stack is the one on PORT when PORT is set, else the one whose .local/stack.json is found (see
lethe_local.stack_file), else http://127.0.0.1:3000."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from lethe_local.stack_file import local_api_url

USAGE = "usage: python -m lethe_local.invoke <LogicalId> <event.json>"


def invoke(base_url: str, logical_id: str, event: bytes, *, timeout: float = 300) -> tuple[int, str, bool]:
    """POST the event to the local stack; returns (status, body, whether the queues drained)."""
    request = urllib.request.Request(  # noqa: S310 - a local http URL built from PORT
        f"{base_url}/_local/invoke/{logical_id}",
        data=event,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310 - http://127.0.0.1 only
            drained = response.headers.get("X-Lethe-Queues-Drained", "true") == "true"
            return response.status, response.read().decode(), drained
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(USAGE, file=sys.stderr)
        return 2
    logical_id, event_path = args
    try:
        event = Path(event_path).read_bytes()
        json.loads(event)
    except OSError as exc:
        print(f"lethe_local.invoke: cannot read {event_path}: {exc.strerror}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"lethe_local.invoke: {event_path} is not valid JSON: {exc}", file=sys.stderr)
        return 2
    port = os.environ.get("PORT")
    base_url = f"http://127.0.0.1:{port}" if port else (local_api_url() or "http://127.0.0.1:3000")
    try:
        status, body, drained = invoke(base_url, logical_id, event)
    except (urllib.error.URLError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        print(
            f"lethe_local.invoke: no local stack answers on {base_url} ({reason}); start it with `make run` "
            "(it writes .local/stack.json; or set PORT to the port it uses)",
            file=sys.stderr,
        )
        return 1
    try:
        print(json.dumps(json.loads(body), indent=2))
    except ValueError:
        print(body)
    if not drained:
        print(
            "lethe_local.invoke: the queues were still busy when the wait ended; see the stack's output",
            file=sys.stderr,
        )
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
