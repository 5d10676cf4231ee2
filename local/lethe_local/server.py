"""The local API Gateway: each HTTP request becomes a REST proxy event for the function that
template.yaml maps to its route, and the function's proxy response becomes the HTTP response.

`POST /_local/invoke/{LogicalId}` runs any function with the event in the body, waits until the
queues are drained, and returns the function's result. It exists only locally.

With a stage (LETHE_STAGE=prod), the API is served under /prod/ as on an execute-api URL: a request to
/prod/requests becomes an event for /requests with requestContext.stage "prod" and requestContext.path
"/prod/requests", as API Gateway sends it; a path outside the stage is a 404. The /_local routes answer
both under the stage and at the root.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from lethe_local.events import api_event
from lethe_local.functions import context_for, handler
from lethe_local.outbox import Outbox
from lethe_local.template import FunctionSpec

INVOKE_PREFIX = "/_local/invoke/"
DRAIN_TIMEOUT_SECONDS = 120.0


class Runtime:
    """Runs functions one at a time: they share os.environ and module state, as one process."""

    def __init__(
        self,
        specs: dict[str, FunctionSpec],
        *,
        outbox: Outbox | None = None,
        drained: Callable[[float], bool] | None = None,
    ) -> None:
        self.specs = specs
        self.outbox = outbox
        self.drained = drained or (lambda timeout: True)
        self._lock = threading.RLock()

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        spec = self.specs[logical_id]
        with self._lock:
            try:
                return handler(spec)(event, context_for(spec))
            finally:
                if self.outbox is not None:
                    self.outbox.flush()


def template_rule(path: str) -> str:
    """/requests/{id} -> /requests/<id>; a greedy {proxy+} matches the rest of the path."""
    path = re.sub(r"\{([A-Za-z0-9_]+)\+\}", r"<path:\1>", path)
    return re.sub(r"\{([A-Za-z0-9_]+)\}", r"<\1>", path)


def route_map(specs: dict[str, FunctionSpec]) -> Map:
    rules = []
    for spec in specs.values():
        for route in spec.routes:
            methods = None if route.method == "ANY" else [route.method]
            rules.append(Rule(template_rule(route.path), methods=methods, endpoint=(spec.logical_id, route.path)))
    rules.append(Rule(f"{INVOKE_PREFIX}<logical_id>", methods=["POST"], endpoint=("_local", "invoke")))
    rules.append(Rule("/_local/recipients/<name>", methods=["POST"], endpoint=("_local", "recipient")))
    return Map(rules, strict_slashes=False, merge_slashes=False)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    return Response(body, status=status, headers=headers, content_type="application/json")


def proxy_response(result: Any) -> Response:
    """A Lambda proxy integration result as an HTTP response."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return error(502, "bad_gateway", "the function did not return an API Gateway proxy response")
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    response = Response(payload, status=int(result["statusCode"]))
    response.headers.clear()
    pairs: list[tuple[str, str]] = []
    multi = result.get("multiValueHeaders") or {}
    for name, values in multi.items():
        pairs.extend((name, str(v)) for v in values)
    for name, value in (result.get("headers") or {}).items():
        if name not in multi:
            pairs.append((name, str(value)))
    for name, value in pairs:
        response.headers.add(name, value)
    return response


class LocalGateway:
    """The WSGI application of the local stack."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        log: Callable[[str], None] | None = print,
        stage: str | None = None,
        recipient: Callable[[Request, str], Response] | None = None,
    ) -> None:
        self.runtime = runtime
        # The demo recipient's webhook (lethe_local.recipient_receiver): it runs no function.
        self.recipient = recipient
        self.routes = route_map(runtime.specs)
        self.log = log
        self.stage = stage or None

    def api_path(self, path: str) -> str | None:
        """The path without the stage prefix; None for a path outside the stage."""
        if self.stage is None:
            return path
        prefix = f"/{self.stage}"
        if path == prefix or path.startswith(prefix + "/"):
            return path[len(prefix) :] or "/"
        return path if path.startswith(("/_local/",)) else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        started = time.monotonic()
        response, target = self.dispatch(request)
        if self.log is not None:
            elapsed = (time.monotonic() - started) * 1000
            # The template's resource path, not the raw path: raw paths may carry identifiers.
            self.log(f"  {request.method:6} {target[1]:40} {response.status_code}  {elapsed:6.0f} ms  {target[0]}")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> tuple[Response, tuple[str, str]]:
        path = self.api_path(request.path)
        if path is None:
            message = f"no route for {request.method} {request.path}; the API is served under /{self.stage}/"
            return error(404, "not_found", message), ("-", "(outside the stage)")
        adapter = self.routes.bind_to_environ(request.environ)
        try:
            (logical_id, resource), arguments = adapter.match(path_info=path, return_rule=False)
        except MethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or []))
            return error(405, "method_not_allowed", f"{request.method} is not allowed here; use {allowed}"), (
                "-",
                "(method not allowed)",
            )
        except NotFound:
            return error(404, "not_found", f"no route for {request.method} {request.path}"), ("-", "(no route)")
        if logical_id == "_local" and resource == "recipient":
            if self.recipient is None:
                return error(404, "not_found", "no recipient webhook on this stack"), ("-", "(no route)")
            return self.recipient(request, str(arguments["name"])), ("_local", "/_local/recipients")
        if logical_id == "_local":
            return self.local_invoke(request, arguments["logical_id"]), (arguments["logical_id"], "/_local/invoke")
        event = api_event(
            request.method,
            path,
            stage=self.stage or "local",
            request_path=request.path if self.stage else None,
            resource=resource,
            path_parameters={k: str(v) for k, v in arguments.items()},
            query=request.args.to_dict(flat=False),
            headers=dict(request.headers.items()),
            body=request.get_data() or None,
            source_ip=request.remote_addr or "127.0.0.1",
        )
        try:
            result = self.runtime.invoke(logical_id, event)
        except Exception as exc:  # API Gateway answers 502 when the integration fails
            print(f"  ! {logical_id} raised {type(exc).__name__}: {exc}", flush=True)
            return error(502, "function_error", f"{logical_id} raised {type(exc).__name__}"), (logical_id, resource)
        return proxy_response(result), (logical_id, resource)

    def local_invoke(self, request: Request, logical_id: str) -> Response:
        if logical_id not in self.runtime.specs:
            known = ", ".join(sorted(self.runtime.specs))
            return error(404, "unknown_function", f"no function {logical_id!r} in template.yaml; known: {known}")
        raw = request.get_data()
        try:
            event = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            return error(400, "invalid_event", f"the event is not valid JSON: {exc}")
        if not isinstance(event, dict):
            return error(400, "invalid_event", "the event must be a JSON object")
        try:
            result = self.runtime.invoke(logical_id, event)
        except Exception as exc:
            print(f"  ! {logical_id} raised {type(exc).__name__}: {exc}", flush=True)
            return error(500, "function_error", f"{logical_id} raised {type(exc).__name__}: {exc}")
        drained = self.runtime.drained(DRAIN_TIMEOUT_SECONDS)
        body = json.dumps(result, default=str)
        return Response(
            body,
            status=200,
            content_type="application/json",
            headers={"X-Lethe-Queues-Drained": "true" if drained else "false"},
        )
