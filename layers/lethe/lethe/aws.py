"""boto3 clients, one per service per process. The endpoint comes from AWS_ENDPOINT_URL (moto locally).
And what counts as a transient AWS error, for the loops that retry one in place."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from functools import cache, wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import boto3
import botocore.session
from aws_lambda_powertools import Logger
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable
from botocore.loaders import Loader

from lethe import service_data

if TYPE_CHECKING:
    from pynamodb.connection import Connection

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
# Presigned URLs must be SigV4: botocore may presign with SigV2 (us-east-1), which S3 refuses for SSE-KMS objects.
_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4"))
logger = Logger(child=True)
T = TypeVar("T")
P = ParamSpec("P")

TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "TransactionInProgressException",
    }
)
# A cancelled transaction is worth retrying when nothing in it was refused, only throttled or raced.
_TRANSIENT_CANCELLATIONS = frozenset({"ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded"})


_creating = threading.Lock()  # a botocore session may not create clients from two threads at once


@cache
def _service_data() -> Loader:
    """botocore's loader of the service models and endpoint rules, reading the layer's cut endpoint table
    first (LETHE_SERVICE_DATA). Parsing those files is most of what a new session costs, and they never
    change while the process runs, so a reset of the clients keeps it."""
    from lethe.settings import get_settings

    return service_data.loader(get_settings().service_data)


@cache
def _session() -> Any:
    # One session for every client: each session would load botocore's endpoint and service data anew.
    loader = _service_data()
    core = botocore.session.Session()
    core.register_component("data_loader", loader)
    session = boto3.session.Session(botocore_session=core)
    loader.search_paths[:] = dict.fromkeys(loader.search_paths)  # each boto3 session adds its data folder again
    return session


@cache
def client(service: str) -> Any:
    from lethe.settings import get_settings

    if service not in service_data.SERVICES:  # the layer's endpoint table holds those alone
        raise ValueError(f"Lethe builds no client of {service!r}; add it to lethe.service_data.SERVICES")

    config = _S3_CONFIG if service == "s3" else _CONFIG
    with _creating:
        return _session().client(service, region_name=get_settings().region, config=config)


@cache
def transaction_connection() -> Connection:
    """The pynamodb connection that DynamoDB transactions (TransactWrite) go through, one per process:
    a new Connection per transaction would build a new botocore session and client each time."""
    from pynamodb.connection import Connection

    from lethe.settings import get_settings

    return Connection(region=get_settings().region)


class _PynamodbSession:
    """What pynamodb's connections build their botocore client from. pynamodb makes one connection per
    model, dataset table and transaction, and each would build a botocore session and a DynamoDB client
    of its own: at a cold start, a session and a client per table touched. Here they all come from
    Lethe's one session, and connections asking for the same client (same region, endpoint and config)
    share one, as botocore clients may be shared between callers."""

    def __init__(self) -> None:
        self._clients: dict[tuple[Any, ...], Any] = {}

    def create_client(self, service: str, region_name: str | None = None, **kwargs: Any) -> Any:
        config = kwargs.get("config")
        key = (
            service,
            region_name,
            kwargs.get("endpoint_url"),
            repr(sorted(vars(config).items())) if config is not None else None,
        )
        with _creating:
            if key not in self._clients:
                self._clients[key] = _session()._session.create_client(service, region_name, **kwargs)
            return self._clients[key]

    def set_credentials(self, *args: Any) -> None:
        raise TypeError("Lethe's pynamodb connections take their credentials from the default chain")


@cache
def _pynamodb_session() -> _PynamodbSession:
    return _PynamodbSession()


def share_session_with_pynamodb() -> None:
    """Make pynamodb's connections (one per model, dataset table and transaction) share Lethe's one
    botocore session and one DynamoDB client (_PynamodbSession), instead of a session and a client each."""
    import pynamodb.connection.base

    pynamodb.connection.base.get_session = _pynamodb_session  # type: ignore[assignment]


def reset_clients() -> None:
    """Forget cached clients and sessions (tests switch endpoints and credentials between cases); the
    service data they were built from stays loaded."""
    client.cache_clear()
    _session.cache_clear()
    _pynamodb_session.cache_clear()
    transaction_connection.cache_clear()


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps: `raise ... from`, and pynamodb's `cause`."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = getattr(current, "cause", None) or current.__cause__
    return chain


def error_code(exc: BaseException) -> str:
    """The AWS error code behind an exception (or its class name), for logs and counts."""
    for cause in _causes(exc):
        if isinstance(cause, ClientError):
            return str(cause.response.get("Error", {}).get("Code", "unknown"))
    return type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """Throttling, a 5xx, a timeout or a dropped connection: the same call may well succeed again.
    A refused condition, a missing table or bad input is not."""
    for cause in _causes(exc):
        if isinstance(cause, HTTPClientError | EndpointUnreachable):
            return True
        if isinstance(cause, ClientError):
            code = cause.response.get("Error", {}).get("Code")
            if code == "TransactionCanceledException":
                reasons = {r.get("Code") for r in cause.response.get("CancellationReasons", [])} - {"None", None}
                return bool(reasons) and reasons <= _TRANSIENT_CANCELLATIONS
            status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            return code in TRANSIENT_CODES or status >= 500
    return False


def retry_transient(operation: Callable[..., T], *args: Any, what: str, **kwargs: Any) -> T:
    """Call `operation(*args, **kwargs)`, retrying it in place on a transient error with full-jitter backoff
    (`transient_retries` times, from `transient_retry_base_ms`). Only for operations that are safe to
    repeat: reads, and writes whose condition makes a second attempt harmless."""
    from lethe.settings import get_settings

    settings = get_settings()
    for attempt in range(settings.transient_retries + 1):
        try:
            return operation(*args, **kwargs)
        except Exception as exc:
            if attempt == settings.transient_retries or not is_transient(exc):
                raise
            logger.info("transient AWS error, retrying", operation=what, error=error_code(exc), attempt=attempt + 1)
            back_off(attempt)
    raise AssertionError("unreachable")


def retried(what: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """A data function that retries itself in place on a transient error (retry_transient), for the
    storage calls that are safe to repeat: reads, and writes whose condition makes a repeat harmless."""

    def wrap(operation: Callable[P, T]) -> Callable[P, T]:
        @wraps(operation)
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return retry_transient(operation, *args, what=what, **kwargs)

        return call

    return wrap


def back_off(attempt: int) -> None:
    """Full-jitter exponential backoff before retry number `attempt` + 1, capped at two seconds."""
    from lethe.settings import get_settings

    ceiling = min(2.0, get_settings().transient_retry_base_ms / 1000 * 2**attempt)
    time.sleep(random.uniform(0, ceiling))  # noqa: S311 - backoff jitter, not a secret
