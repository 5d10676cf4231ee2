"""Cold start as a caller waits for it: a fresh interpreter, up to the first response of a
representative event, against a moto server holding the stack of template.yaml.

Each sample is one new process. It reports the interpreter start (spawn to the first line of the
probe), INIT (importing the function's `app.py`, which is what Lambda runs before the first event)
and the first invocation apart; the total is the wall time from spawn to the answer. Two baselines run
in the same loop, so the ratios compare like with like on a loaded machine:

- the floor: `import boto3` and one DynamoDB GetItem;
- what an engineer would write instead: a minimal Powertools REST resolver with validation, a pydantic
  response model and the same GetItem.

Every row runs with tracing off (the baselines have no tracer) and from compiled bytecode, and the
functions load the compiled inventory.pickle and the cut endpoint table as the layer ships them
(LETHE_INVENTORY and LETHE_SERVICE_DATA in template.yaml).
The table prints, per function, INIT, first invocation and total (p50, and p95 of the total), the
ratio of its total to each baseline's, and whether each meets its target: at most 1.2x the
Powertools baseline for every function, and at most 1.5x the floor for the API functions.

Between two samples the stack's queues are emptied, as their consumers would empty them.

`LETHE_BENCH_COLD_RUNS` (default 21) sets the number of runs per row."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lethe_local.template import functions, load_template

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
RUNS = int(os.environ.get("LETHE_BENCH_COLD_RUNS", "21"))

# Each function is driven by its own sample, events/<code folder>.json; the public API by the status read
# a subject waits for.
API_FUNCTIONS = {"PublicApiFunction", "AdminApiFunction"}
# The targets: every function's total against the Powertools baseline, the API functions' against the floor.
POWERTOOLS_TARGET = 1.2
FLOOR_TARGET = 1.5

# The Lambda context every probe passes, defined in the probe itself so no row imports a helper module (the
# local stack's loader pulls in YAML) that Lambda would not load.
CONTEXT = """
class LambdaContext:
    def __init__(self, function_name):
        self.function_name = function_name
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
        self.aws_request_id = "00000000-0000-4000-8000-000000000000"
        self.function_version = "$LATEST"
        self.log_group_name = "/aws/lambda/" + function_name
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self):
        return 30_000
"""

# Every probe prints INIT and the first invocation, and the moment it answered on the system's monotonic clock
# (time.monotonic is CLOCK_MONOTONIC on Linux, the same clock in every process), so the parent measures from
# its spawn to the answer: what a caller waits for. Interpreter teardown after the answer is no one's wait.
FUNCTION_PROBE = CONTEXT + textwrap.dedent("""
    import time
    t0 = time.perf_counter()
    import importlib.util, json, sys
    spec = importlib.util.spec_from_file_location("app", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    t1 = time.perf_counter()
    answer = module.lambda_handler(json.load(open(sys.argv[2])), LambdaContext(function_name=sys.argv[3]))
    t2, answered_at = time.perf_counter(), time.monotonic()
    reading = {"answered_at": answered_at, "init": t1 - t0, "invoke": t2 - t1, "answer": str(answer)[:200]}
    print(json.dumps(reading), flush=True)
""")

FLOOR_PROBE = textwrap.dedent("""
    import time
    t0 = time.perf_counter()
    import json, os, sys
    import boto3
    t1 = time.perf_counter()
    item = boto3.client("dynamodb").get_item(TableName=os.environ["LETHE_REQUESTS_TABLE"],
                                             Key={"pk": {"S": "REQ#req_missing"}, "sk": {"S": "SUMMARY"}})
    t2, answered_at = time.perf_counter(), time.monotonic()
    reading = {"answered_at": answered_at, "init": t1 - t0, "invoke": t2 - t1, "answer": str("Item" in item)}
    print(json.dumps(reading), flush=True)
""")

POWERTOOLS_PROBE = CONTEXT + textwrap.dedent("""
    import time
    t0 = time.perf_counter()
    import json, os, sys
    from typing import Annotated
    import boto3
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver
    from aws_lambda_powertools.event_handler.openapi.params import Path
    from pydantic import BaseModel, Field

    logger = Logger()
    app = APIGatewayRestResolver(enable_validation=True)
    table = os.environ["LETHE_REQUESTS_TABLE"]
    dynamodb = boto3.client("dynamodb")

    class Status(BaseModel):
        request_id: str
        status: str = Field(max_length=32)

    @app.get("/requests/<request_id>")
    def status(request_id: Annotated[str, Path(pattern="^req_[A-Za-z0-9_-]{1,64}$")]) -> Status:
        item = dynamodb.get_item(TableName=table, Key={"pk": {"S": "REQ#" + request_id}, "sk": {"S": "SUMMARY"}})
        return Status(request_id=request_id, status=item.get("Item", {}).get("status", {}).get("S", "unknown"))

    @logger.inject_lambda_context
    def lambda_handler(event, context):
        return app.resolve(event, context)

    t1 = time.perf_counter()
    answer = lambda_handler(json.load(open(sys.argv[1])), LambdaContext(function_name="Baseline"))
    t2, answered_at = time.perf_counter(), time.monotonic()
    reading = {"answered_at": answered_at, "init": t1 - t0, "invoke": t2 - t1, "answer": str(answer)[:200]}
    print(json.dumps(reading), flush=True)
""")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A moto server in this process with the template's stack; the environment a function gets."""
    from moto.server import ThreadedMotoServer

    from lethe_local.resources import create_stack

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        stack = create_stack()
        inventory = tmp_path_factory.mktemp("layer") / "inventory.pickle"
        compiled = subprocess.run(
            [sys.executable, "-m", "lethe.inventory", str(REPO / "config" / "inventory.yaml"), str(inventory)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert compiled.returncode == 0, compiled.stderr
        # The layer's endpoint table, cut to Lethe's services from this botocore's (layers/lethe/Makefile).
        import botocore

        from lethe.service_data import write_endpoints

        service_data = write_endpoints(
            Path(botocore.__file__).parent / "data" / "endpoints.json", inventory.parent / "botocore"
        ).parent
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LETHE_")},
            **stack.environment,
            "AWS_ENDPOINT_URL": endpoint,
            "LETHE_ADMIN_TOKEN": "local-admin-token",  # the token the admin sample event carries
            "LETHE_INVENTORY": str(inventory),  # the layer's compiled form, as template.yaml points at it
            "LETHE_SERVICE_DATA": str(service_data),  # read by Lethe's loader alone, not by the baselines' boto3
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        yield env
    finally:
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = saved
        server.stop()


def _status_event(tmp: Path) -> Path:
    """The public API sample, turned into the status read a subject makes: GET /requests/{id}."""
    event = json.loads((EVENTS / "public_api.json").read_text())
    event.update(resource="/requests/{request_id}", path="/requests/req_missing")
    event["pathParameters"] = {"request_id": "req_missing"}
    event["requestContext"].update(resourcePath="/requests/{request_id}", path="/local/requests/req_missing")
    path = tmp / "status_event.json"
    path.write_text(json.dumps(event))
    return path


def _sample(args: list[str], env: dict[str, str]) -> dict[str, float]:
    start = time.monotonic()
    out = subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    exited = time.monotonic() - start
    if out.returncode != 0:
        raise AssertionError(f"probe failed: {out.stderr[-2000:]}")
    reading = json.loads(out.stdout.strip().splitlines()[-1])
    total = reading["answered_at"] - start
    assert 0 < total <= exited, (total, exited)
    return {
        "init": reading["init"],
        "invoke": reading["invoke"],
        "total": total,
        "exit": exited,
        "answer": reading["answer"],
    }


def _drain_queues(sqs: Any, urls: list[str]) -> None:
    """Empty the stack's queues, as their consumers would between two events. Outside every timed span:
    moto's SendMessageBatch slows with the depth of the queue (the planner's 29 tasks cost 12 ms a batch
    on an empty RetentionQueue, 130 ms after 20 runs), which no real queue does. (PurgeQueue is allowed
    once a minute.)"""
    for url in urls:
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_cold_start(bench_report: Any, stack_env: dict[str, str], tmp_path: Path) -> None:
    # Given every function, its sample event, and the two baselines, each command a fresh process
    status_event = _status_event(tmp_path)
    specs = functions(load_template())
    rows: dict[str, list[str]] = {
        "floor: import boto3 + GetItem": [sys.executable, "-c", FLOOR_PROBE],
        "powertools: minimal resolver + GetItem": [sys.executable, "-c", POWERTOOLS_PROBE, str(status_event)],
    }
    for logical_id, spec in sorted(specs.items()):
        event = status_event if logical_id == "PublicApiFunction" else EVENTS / f"{spec.code_uri.name}.json"
        rows[logical_id] = [sys.executable, "-c", FUNCTION_PROBE, str(spec.module_path), str(event), logical_id]
    subprocess.run([sys.executable, "-c", "import boto3, aws_lambda_powertools, pydantic, pynamodb"], check=True)
    # The layer ships compiled bytecode (layers/lethe/Makefile); so does every row here.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "layers" / "lethe" / "lethe")], check=True)

    import boto3

    sqs = boto3.client("sqs", endpoint_url=stack_env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    queues = [url for name, url in stack_env.items() if name.endswith("_QUEUE_URL")]

    # When each row runs RUNS times, interleaved, so load on the machine falls on every row alike
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in rows}
    for _ in range(RUNS):
        for name, args in rows.items():
            samples[name].append(_sample(args, stack_env))
            _drain_queues(sqs, queues)

    # Then every function answered its event, and the table reports INIT, first invocation and total
    def p(name: str, key: str, q: float = 0.5) -> float:
        return _percentile([s[key] for s in samples[name]], q) * 1000

    floor, powertools = "floor: import boto3 + GetItem", "powertools: minimal resolver + GetItem"
    assert "200" in str(samples[powertools][0]["answer"]) or "404" in str(samples[powertools][0]["answer"])
    floor_p50, powertools_p50 = p(floor, "total"), p(powertools, "total")
    lines = []
    for logical_id in sorted(specs):
        first = str(samples[logical_id][0]["answer"])
        assert "Traceback" not in first, first
        total = p(logical_id, "total")
        api = logical_id in API_FUNCTIONS
        vs_floor = bench_report.row(
            f"{logical_id} total p50 vs floor",
            total,
            floor_p50,
            target=f"<= {FLOOR_TARGET}x floor" if api else "(reported)",
            unit="ms",
            init_p50=p(logical_id, "init"),
            invoke_p50=p(logical_id, "invoke"),
            total_p95=p(logical_id, "total", 0.95),
            exit_p50=p(logical_id, "exit"),
        )
        vs_powertools = bench_report.row(
            f"{logical_id} total p50 vs powertools",
            total,
            powertools_p50,
            target=f"<= {POWERTOOLS_TARGET}x",
            unit="ms",
        )
        floor_verdict = ("meets" if vs_floor <= FLOOR_TARGET else "MISSES") if api else "-"
        powertools_verdict = "meets" if vs_powertools <= POWERTOOLS_TARGET else "MISSES"
        lines.append(
            f"{logical_id:<26} {p(logical_id, 'init'):>6.0f} {p(logical_id, 'invoke'):>7.0f} {total:>7.0f} "
            f"{p(logical_id, 'total', 0.95):>7.0f}  {vs_floor:>5.2f}x {floor_verdict:<7} "
            f"{vs_powertools:>5.2f}x {powertools_verdict}"
        )
    print(f"\n== cold start per function: {RUNS} fresh processes per row, times in ms (p50 unless named)")
    print(
        f"{'function':<26} {'INIT':>6} {'invoke':>7} {'total':>7} {'p95':>7}  "
        f"{'/floor':>6} {'<=' + str(FLOOR_TARGET) + 'x':<7} {'/powertools':>6} <={POWERTOOLS_TARGET}x"
    )
    print("\n".join(lines))
    for name in (floor, powertools):
        print(
            f"{name:<40} INIT {p(name, 'init'):>5.0f}, first call {p(name, 'invoke'):>5.0f}, "
            f"total {p(name, 'total'):>5.0f}, p95 {p(name, 'total', 0.95):>5.0f}, process exit {p(name, 'exit'):>5.0f}"
        )
    # The baselines against each other: where the Powertools baseline is itself over the floor target, an API
    # function that validates with Powertools meets that target only by beating the baseline.
    print(
        f"powertools baseline / floor: {powertools_p50 / floor_p50:.2f}x "
        f"(the API functions' target: <= {FLOOR_TARGET}x floor)"
    )
    print(
        "(INIT: importing app.py; invoke: the first event; total: spawn to the answer, so it also holds the "
        f"interpreter's start. statistics.median of the floor's totals: "
        f"{statistics.median(s['total'] for s in samples[floor]) * 1000:.0f} ms)"
    )
    assert len(bench_report.rows) == 2 * len(specs)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-s"]))
