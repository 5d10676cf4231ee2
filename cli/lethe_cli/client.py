"""Talks to a Lethe admin API: the local stack (bearer token) or a deployed stack (SigV4, IAM).

The local stack is found through the .local/stack.json and .local/admin-token it writes (lethe_local.stack_file),
so `lethe` reaches it on whatever port and stage it was started with."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from lethe_local.stack_file import find_local_file, local_api_url

DEFAULT_LOCAL_URL = "http://127.0.0.1:3000"
TOKEN_FILE = "admin-token"  # noqa: S105 - the file's name, not a token


class CliError(Exception):
    """A failure told to the operator in one line, with exit code 1."""


def local_token() -> str | None:
    """LETHE_ADMIN_TOKEN, else the token the local stack wrote to .local/admin-token."""
    token = os.environ.get("LETHE_ADMIN_TOKEN", "").strip()
    if token:
        return token
    found = find_local_file(TOKEN_FILE)
    if found is None:
        return None
    return found.read_text().strip() or None


@dataclass
class Target:
    """Where calls go: a base URL and either a bearer token or AWS credentials for SigV4."""

    base_url: str
    token: str | None = None
    stack: str | None = None
    region: str | None = None
    session: Any = field(default=None, repr=False)

    @property
    def is_local(self) -> bool:
        return self.stack is None

    @classmethod
    def local(cls, base_url: str | None = None) -> Target:
        # --api-url or LETHE_API_URL, else the URL the running stack wrote to .local/stack.json.
        url = (base_url or os.environ.get("LETHE_API_URL") or local_api_url() or DEFAULT_LOCAL_URL).rstrip("/")
        return cls(base_url=url, token=local_token())

    @classmethod
    def deployed(cls, stack: str, region: str | None = None) -> Target:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        session = boto3.Session(region_name=region)
        try:
            described = session.client("cloudformation").describe_stacks(StackName=stack)
        except (BotoCoreError, ClientError) as exc:
            raise CliError(f"cannot read stack {stack!r}: {exc}") from exc
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Stacks"][0].get("Outputs", [])}
        if "ApiUrl" not in outputs:
            raise CliError(f"stack {stack!r} has no ApiUrl output")
        return cls(base_url=outputs["ApiUrl"].rstrip("/"), stack=stack, region=session.region_name, session=session)

    def function_name(self, logical_id: str) -> str:
        """The physical name of a function of the deployed stack."""
        resource = self.session.client("cloudformation").describe_stack_resource(
            StackName=self.stack, LogicalResourceId=logical_id
        )
        return str(resource["StackResourceDetail"]["PhysicalResourceId"])


class ApiClient:
    def __init__(self, target: Target, timeout: float = 120.0) -> None:
        self.target = target
        self.timeout = timeout

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        pairs = {k: v for k, v in (query or {}).items() if v is not None}
        suffix = f"?{urllib.parse.urlencode(pairs)}" if pairs else ""
        return f"{self.target.base_url}{path}{suffix}"

    def _headers(self, method: str, url: str, data: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.target.is_local:
            if self.target.token:
                headers["Authorization"] = f"Bearer {self.target.token}"
            return headers
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = self.target.session.get_credentials()
        if credentials is None:
            raise CliError("no AWS credentials found for signing (set AWS_PROFILE or run `aws configure`)")
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", self.target.region).add_auth(request)
        return dict(request.headers.items())

    def call(self, method: str, path: str, *, query: dict[str, Any] | None = None, body: Any = None) -> Any:
        url = self.url(path, query)
        if not url.startswith(("http://", "https://")):
            raise CliError(f"the API URL must be http(s), not {url.split(':', 1)[0]}")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own API
            url, data=data, method=method, headers=self._headers(method, url, data)
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310  # nosec B310 - http(s) only, checked above
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise CliError(describe_http_error(exc.code, exc.read(), self.target)) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            if self.target.is_local:
                raise CliError(
                    f"the local stack is not answering at {self.target.base_url} ({reason}); start it with `make run`"
                ) from None
            raise CliError(f"cannot reach {self.target.base_url}: {reason}") from None
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            return {"body": raw.decode(errors="replace")}

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body=body if body is not None else {})

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)


def describe_http_error(status: int, raw: bytes, target: Target) -> str:
    """One line: the status, the API's error code and message, and a hint where one helps."""
    code, message = "", ""
    try:
        error = json.loads(raw).get("error") or {}
        code, message = str(error.get("code", "")), str(error.get("message", ""))
    except (ValueError, AttributeError):
        message = raw.decode(errors="replace").strip()[:200]
    text = f"{status} {code}: {message}" if code else f"{status}: {message or 'no details'}"
    if status in (401, 403):
        hint = (
            "set LETHE_ADMIN_TOKEN or start the stack so it writes .local/admin-token"
            if target.is_local
            else "your AWS identity needs execute-api:Invoke on the admin routes"
        )
        return f"not authorized ({text}); {hint}"
    if status == 404:
        return f"not found ({text})"
    return f"the API refused the call ({text})"
