"""`python -m lethe_local` (`make run`): the whole of Lethe on one machine, with no AWS account.

moto's server is the AWS endpoint (LETHE_AWS_PORT, default 4566); inside the process, the functions
reach the same backends through moto's in-process mock (S3 through the server, whose address presigned
links carry). Every resource of template.yaml is created from the template's own properties; demo data
is seeded; the API is served on PORT (default 3000), under a stage prefix with `--stage prod` or
LETHE_STAGE=prod (as on an execute-api URL); the SQS queues are polled; every email lands in the
outbox. The API URL and ports are written to <local dir>/stack.json, where `make invoke` and `lethe`
find them.

Everything lives in moto's memory: a restart starts from the seeded demo data again.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import secrets
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from lethe_local.outbox import local_dir

HOST = "127.0.0.1"
REGION = "us-east-1"
STAGE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")  # API Gateway's rule for stage names


class StartupError(Exception):
    """Something the user must fix before the stack can start; the message says what."""


class _QuietHandler(WSGIRequestHandler):
    """The gateway prints its own one-line access log."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class LocalStack:
    port: int
    aws_port: int
    directory: Path
    stage: str | None = None
    servers: list[BaseWSGIServer] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    poller: Any = None
    stream_poller: Any = None
    smtp_port: int = 0
    smtp: Any = None  # the privacy inbox's SMTP server (lethe_local.smtp)
    object_poller: Any = None
    mock: Any = None  # moto's in-process mock, for the calls made in this process

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.port}" + (f"/{self.stage}" if self.stage else "")

    def stop(self) -> None:
        from lethe_local import stack_file

        stack_file.remove(self.directory)
        if self.smtp is not None:
            self.smtp.stop()
        if self.stream_poller is not None:
            self.stream_poller.stop()
        if self.object_poller is not None:
            self.object_poller.stop()
        if self.poller is not None:
            self.poller.stop()
        for server in reversed(self.servers):
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=10)
        if self.mock is not None:
            self.mock.stop()


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise StartupError(f"{name}={raw!r} is not a port number; set {name} to a free port, e.g. {default}") from None
    if not 0 < value < 65536:
        raise StartupError(f"{name}={value} is out of range; set {name} to a free port, e.g. {default}")
    return value


def _bind(app: Any, port: int, variable: str, what: str, handler: type[WSGIRequestHandler]) -> BaseWSGIServer:
    try:
        return make_server(HOST, port, app, threaded=True, request_handler=handler)
    except OSError as exc:
        raise StartupError(
            f"port {port} ({what}) is already in use or unavailable ({exc.strerror}); "
            f"choose another with {variable}=<port>, e.g. {variable}={port + 1} make run"
        ) from None


def _check_free(port: int, variable: str, what: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise StartupError(
                f"port {port} ({what}) is already in use or unavailable ({exc.strerror}); "
                f"choose another with {variable}=<port>, e.g. {variable}={port + 1} make run"
            ) from None


def _serve(stack: LocalStack, server: BaseWSGIServer, name: str) -> None:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name=name, daemon=True)
    thread.start()
    stack.servers.append(server)
    stack.threads.append(thread)


def _stage(given: str | None) -> str | None:
    """--stage, else LETHE_STAGE; None serves the API at the root."""
    stage = (given if given is not None else os.environ.get("LETHE_STAGE", "")).strip().strip("/")
    if stage and not STAGE_NAME.fullmatch(stage):
        raise StartupError(f"stage {stage!r} is not a valid stage name; use letters, digits, '-' or '_', e.g. prod")
    return stage or None


def _environment(stack: LocalStack) -> None:
    # In this process the functions and the stack reach moto's backends directly (moto's mock, no HTTP),
    # except S3: its presigned links must carry the server's address. Outside the process (tests, the
    # CLI, boto3 on LETHE_AWS_PORT) the server reaches the same backends.
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(
        AWS_ENDPOINT_URL_S3=f"http://{HOST}:{stack.aws_port}",
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 - moto accepts any credentials
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        LETHE_PUBLIC_BASE_URL=stack.api_url,  # emailed links carry the stage, as PublicBaseUrl does in AWS
    )
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")


def _admin_token(directory: Path) -> tuple[str, Path | None]:
    """LETHE_ADMIN_TOKEN if set; otherwise a new token, written to <local dir>/admin-token."""
    given = os.environ.get("LETHE_ADMIN_TOKEN")
    if given:
        return given, None
    token = secrets.token_urlsafe(24)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "admin-token"
    path.write_text(token + "\n", encoding="utf-8")
    path.chmod(0o600)
    os.environ["LETHE_ADMIN_TOKEN"] = token
    return token, path


def start(stage: str | None = None) -> LocalStack:
    """Start everything; raise StartupError with a one-line message when the user must fix something."""
    from lethe.errors import InventoryError
    from lethe_local.template import TEMPLATE, TemplateError, functions, load_template

    served_stage = _stage(stage)
    port, aws_port = _port("PORT", 3000), _port("LETHE_AWS_PORT", 4566)
    if port == aws_port:
        raise StartupError(f"PORT and LETHE_AWS_PORT are both {port}; give them different values")
    smtp_port = _port("LETHE_SMTP_PORT", 2525)
    if smtp_port in (port, aws_port):
        raise StartupError(f"LETHE_SMTP_PORT is {smtp_port}, as PORT or LETHE_AWS_PORT; give it its own port")
    _check_free(aws_port, "LETHE_AWS_PORT", "AWS endpoint")
    _check_free(port, "PORT", "API")
    _check_free(smtp_port, "LETHE_SMTP_PORT", "privacy inbox SMTP")
    try:
        # LETHE_TEMPLATE lets a test (or a fork) point the local stack at another template.
        template = load_template(Path(os.environ.get("LETHE_TEMPLATE") or TEMPLATE))
        specs = functions(template)
        _validate_inventory()
    except TemplateError as exc:
        raise StartupError(f"template.yaml: {exc}" if "template.yaml" not in str(exc) else str(exc)) from None
    except InventoryError as exc:
        raise StartupError(f"inventory: {exc}") from None

    directory = local_dir()
    stack = LocalStack(port=port, aws_port=aws_port, directory=directory, stage=served_stage, smtp_port=smtp_port)
    _environment(stack)
    try:
        _start_aws(stack)
        _start_services(stack, template, specs)
    except BaseException:
        stack.stop()
        raise
    return stack


def _validate_inventory() -> None:
    from lethe.inventory import cached_inventory, get_inventory
    from lethe.settings import get_settings

    get_settings.cache_clear()
    cached_inventory.cache_clear()
    get_inventory()


def _start_aws(stack: LocalStack) -> None:
    from moto import mock_aws
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    from lethe_local import moto_speed

    moto_speed.install()
    stack.mock = mock_aws()
    stack.mock.start()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = DomainDispatcherApplication(create_backend_app)
    server = _bind(app, stack.aws_port, "LETHE_AWS_PORT", "AWS endpoint", MotoRequestHandler)
    server.log = _AwsErrorLog(stack.directory / "aws-errors.log")  # type: ignore[method-assign]
    _serve(stack, server, "moto")


class _AwsErrorLog:
    """moto answers a call it cannot handle with a 500 and a traceback: one line on the console,
    the whole traceback in a file, so the stack's output stays readable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def __call__(self, type: str, message: str, *args: Any) -> None:
        if type != "error":
            return
        text = message % args if args else message
        last = text.strip().splitlines()[-1] if text.strip() else "error"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as log:
                log.write(text + "\n\n")
        print(f"  ! AWS endpoint (moto) failed a call: {last}  (traceback in {self.path})", flush=True)


def _start_services(stack: LocalStack, template: dict[str, Any], specs: dict[str, Any]) -> None:
    import boto3

    from lethe.data.models import bind_models
    from lethe.settings import get_settings
    from lethe_local import recipient_receiver, stack_file
    from lethe_local.outbox import Outbox
    from lethe_local.poller import QueuePoller, Source, batch_sizes, wait_drained
    from lethe_local.resources import create_stack
    from lethe_local.seed import seed_demo_data, seed_feedback_logs
    from lethe_local.server import LocalGateway, Runtime
    from lethe_local.writes import WriteWatch

    # Before any client exists: each session built after this carries the watch's handlers.
    watch = WriteWatch(stream_tables=_stream_tables, object_buckets=lambda: {b for b, _ in _object_prefixes()})
    watch.install()
    created = create_stack(template, region=REGION)
    os.environ.update(created.environment)
    token, token_file = _admin_token(stack.directory)
    recipient_receiver.point_inventory_here(stack.port, stack.directory)
    _validate_inventory()  # settings now see the stack's environment (and the inventory's copy, if any)
    settings = get_settings()
    bind_models(settings)
    seeded = seed_demo_data()
    seeded.update(seed_feedback_logs())

    sqs = boto3.client("sqs", region_name=REGION)
    attributes = {
        name: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"])["Attributes"]
        for name, url in created.queue_urls.items()
    }
    sizes = batch_sizes(template)
    sources = [
        Source(
            spec.logical_id,
            queue,
            created.queue_urls[queue],
            attributes[queue]["QueueArn"],
            sizes.get((spec.logical_id, queue), 10),
            has_dead_letter_queue="RedrivePolicy" in attributes[queue],
        )
        for spec in specs.values()
        for queue in spec.queues
        if queue in created.queue_urls
    ]
    # Only queues a function polls: a dead-letter queue nobody consumes keeps its messages on purpose.
    urls = list(dict.fromkeys(source.url for source in sources))

    def drained(timeout: float) -> bool:
        streams_done = stack.stream_poller is None or _wait(stack.stream_poller.caught_up, timeout)
        objects_done = stack.object_poller is None or _wait(stack.object_poller.caught_up, timeout)
        return wait_drained(sqs, urls, timeout) and streams_done and objects_done

    runtime = Runtime(specs, outbox=Outbox(stack.directory / "outbox", region=REGION), drained=drained)
    gateway = LocalGateway(
        runtime,
        stage=stack.stage,
        recipient=lambda request, name: recipient_receiver.receive(request, name, stack.directory, REGION),
    )
    _serve(stack, _bind(gateway, stack.port, "PORT", "API", _QuietHandler), "gateway")
    stack.poller = QueuePoller(sqs, sources, runtime.invoke, parked=stack.directory / "parked", wakeup=watch.queues)
    stack.poller.start()
    stack.stream_poller = _stream_poller(template, specs, runtime, stack.directory / "parked", watch.streams)
    if stack.stream_poller is not None:
        stack.stream_poller.start()
    stack.smtp = _privacy_inbox(stack, template, created.physical, runtime)
    stack.object_poller = _object_poller(template, specs, runtime, watch.objects)
    if stack.object_poller is not None:
        stack.object_poller.start()
    stack_file.write(
        stack.directory,
        api_url=stack.api_url,
        port=stack.port,
        aws_port=stack.aws_port,
        stage=stack.stage,
        smtp_port=stack.smtp_port if stack.smtp is not None else None,
    )
    _banner(stack, specs, token, token_file, seeded, sources)


def _privacy_inbox(stack: LocalStack, template: dict[str, Any], physical: dict[str, str], runtime: Any) -> Any:
    """The SES receipt rule of the template, as an SMTP server on LETHE_SMTP_PORT."""
    import boto3

    from lethe.settings import get_settings
    from lethe_local import smtp

    rule = smtp.receipt_rule(template, physical)
    if rule is None or rule.function not in runtime.specs:
        return None
    try:
        return smtp.start(
            rule,
            host=HOST,
            port=stack.smtp_port,
            max_bytes=get_settings().inbound_max_bytes,
            s3=boto3.client("s3", region_name=REGION),
            invoke=runtime.invoke,
        )
    except OSError as exc:
        raise StartupError(
            f"port {stack.smtp_port} (privacy inbox SMTP) is unavailable ({exc.strerror}); "
            f"choose another with LETHE_SMTP_PORT=<port>"
        ) from None


def _stream_poller(template: dict[str, Any], specs: dict[str, Any], runtime: Any, parked: Path, wakeup: Any) -> Any:
    """The stream event source mapping: the inventory's tables, as they come and go, to the function
    the template maps dataset streams to."""
    import boto3
    from botocore.config import Config

    from lethe_local.streams import StreamPoller, stream_functions

    targets = [name for name in stream_functions(template) if name in specs]
    if not targets:
        return None
    # The account-based endpoint botocore would pick for a stream ARN is not moto's.
    streams = boto3.client("dynamodbstreams", region_name=REGION, config=Config(account_id_endpoint_mode="disabled"))
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    return StreamPoller(dynamodb, streams, _stream_tables, targets[0], runtime.invoke, parked=parked, wakeup=wakeup)


def _object_poller(template: dict[str, Any], specs: dict[str, Any], runtime: Any, wakeup: Any) -> Any:
    """S3 ObjectCreated events of the inventory's buckets, as EventBridge delivers them, to the
    function the template's rule names (buckets created after the start included)."""
    import boto3

    from lethe_local.objects import ObjectEventPoller, object_functions

    targets = [name for name in object_functions(template) if name in specs]
    if not targets:
        return None
    s3 = boto3.client("s3", region_name=REGION)
    return ObjectEventPoller(s3, _object_prefixes, targets[0], runtime.invoke, wakeup=wakeup)


def _stream_tables() -> list[str]:
    """The inventory's tables, as they are now (a test or a fork may change the inventory)."""
    from lethe.inventory import get_inventory
    from lethe.settings import get_settings

    settings = get_settings()
    return sorted({settings.table_name(d.table) for d in get_inventory().datasets.values() if d.table})


def _object_prefixes() -> list[tuple[str, str]]:
    """The (bucket, prefix) of every S3 dataset of the inventory."""
    from lethe.inventory import get_inventory
    from lethe.settings import get_settings

    settings = get_settings()
    return sorted({(settings.bucket_name(d.bucket), d.prefix) for d in get_inventory().datasets.values() if d.bucket})


def _wait(condition: Any, timeout: float) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    return True


def _banner(
    stack: LocalStack,
    specs: dict[str, Any],
    token: str,
    token_file: Path | None,
    seeded: dict[str, int],
    sources: list[Any],
) -> None:
    from lethe_local.seed import DEMO_SUBJECTS, FILLER_SUBJECTS

    base = stack.api_url
    scheduled = sorted(s.logical_id for s in specs.values() if s.schedules)
    token_line = f"{token}  (saved in {token_file})" if token_file else "from LETHE_ADMIN_TOKEN"
    lines = [
        "",
        "  Lethe local stack is running",
        f"  API          {base}/            (form)  {base}/swagger  {base}/openapi.json",
        f"  Admin token  {token_line}",
        f"               curl -H 'Authorization: Bearer <token>' {base}/admin/requests",
        f"  Outbox       {stack.directory / 'outbox'}/  (every email sent is printed here too)",
        f"  Privacy inbox smtp://{HOST}:{stack.smtp_port}  (mail to the privacy address; `lethe inbox list`)"
        if stack.smtp is not None
        else "  Privacy inbox (no receipt rule in the template)",
        f"  AWS (moto)   http://{HOST}:{stack.aws_port}  ({len(sources)} queue pollers; state is in memory)",
        f"  Stack file   {stack.directory / 'stack.json'}  (make invoke and lethe find the stack here)",
        f"  Demo data    {sum(seeded.values())} items written; subjects:",
        *(f"                 {s.email:20} {s.name:15} {s.story}" for s in DEMO_SUBJECTS),
        f"                 user001..user{FILLER_SUBJECTS:03d}@example.net (filler, some past retention)",
        f"  Scheduled    {', '.join(scheduled)}; run one now with",
        "               make invoke FN=RetentionFunction EVENT=events/retention.json",
        "  Stop with Ctrl-C.",
        "",
    ]
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    from lethe.errors import InventoryError
    from lethe_local.template import TemplateError

    parser = argparse.ArgumentParser(prog="python -m lethe_local", description="Run Lethe locally.")
    parser.add_argument("--stage", help="serve the API under /<stage>/, as an execute-api URL (env LETHE_STAGE)")
    args = parser.parse_args(argv)

    if not os.environ.get("LETHE_LOCAL_RAW_LOGS"):
        from lethe_local.console import CondensingStream

        sys.stdout = CondensingStream(sys.stdout)
    stopping = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stopping.set()

    # Installed first, so a stop requested while starting is honoured once the start completes.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        stack = start(args.stage)
    except StartupError as exc:
        print(f"lethe_local: {exc}", file=sys.stderr)
        return 2
    except (TemplateError, InventoryError) as exc:
        print(f"lethe_local: {exc}", file=sys.stderr)
        return 2
    while not stopping.wait(0.5):
        pass
    print("\n  stopping the local stack…", flush=True)
    stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
