"""The local stack over HTTP: routing from template.yaml, the local invoke route, the SQS poller,
and the one-line errors for a busy port or a broken inventory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
import yaml

from lethe.domain import Regulation, RequestType
from tests.e2e.conftest import REPO, LocalStack, free_port, run_stack, stack_environment, wait_until_ready

EVENTS = REPO / "events"


def test_openapi_is_served_as_openapi_3_1(local_stack: LocalStack) -> None:
    # When
    response = requests.get(f"{local_stack.base_url}/openapi.json", timeout=30)

    # Then
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["openapi"].startswith("3.1")


def test_root_serves_an_html_page(local_stack: LocalStack) -> None:
    response = requests.get(f"{local_stack.base_url}/", timeout=30)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html" in response.text.lower()


def test_discovery_answers(local_stack: LocalStack) -> None:
    response = requests.get(f"{local_stack.base_url}/discovery", timeout=30)

    assert response.status_code == 200
    body = response.json()
    assert body["supported_request_types"] == [t.value for t in RequestType]
    assert body["supported_identities"] == ["email (one-time code)"]
    assert body["supported_regulations"] == [r.value for r in Regulation]
    # The demo map lets a subject correct their display name, never the address that finds them
    assert body["correctable_fields"]["display_name"] == "a name of 1 to 200 characters"
    assert "email" not in body["correctable_fields"]


def test_unknown_route_is_a_json_404(local_stack: LocalStack) -> None:
    # Given a path no function in template.yaml declares
    path = f"/no-such-route-{uuid.uuid4().hex[:8]}"

    # When
    response = requests.get(f"{local_stack.base_url}{path}", timeout=30)

    # Then
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_admin_route_without_token_is_refused(local_stack: LocalStack) -> None:
    response = requests.get(f"{local_stack.base_url}/admin/requests", timeout=30)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_local_invoke_runs_the_deadline_function(local_stack: LocalStack) -> None:
    # Given the sample scheduled event
    event = (EVENTS / "deadline.json").read_bytes()

    # When
    response = requests.post(f"{local_stack.base_url}/_local/invoke/DeadlineFunction", data=event, timeout=180)

    # Then
    assert response.status_code == 200, response.text
    assert response.headers["X-Lethe-Queues-Drained"] == "true"
    summary = json.loads(response.text)
    assert summary["now"].startswith(json.loads(event)["time"][:19])
    assert summary["failed"] == []


def test_local_invoke_of_an_unknown_function_is_404(local_stack: LocalStack) -> None:
    response = requests.post(f"{local_stack.base_url}/_local/invoke/NoSuchFunction", data=b"{}", timeout=30)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_function"


def test_invoke_cli_prints_the_result(local_stack: LocalStack) -> None:
    # When
    done = subprocess.run(
        [sys.executable, "-m", "lethe_local.invoke", "DeadlineFunction", str(EVENTS / "deadline.json")],
        env=stack_environment(local_stack.port, local_stack.aws_port, local_stack.outbox.parent),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )

    # Then
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)


def test_invoke_cli_says_when_no_stack_runs(tmp_path: Path) -> None:
    # Given a port nothing listens on
    port = free_port()

    # When
    done = subprocess.run(
        [sys.executable, "-m", "lethe_local.invoke", "DeadlineFunction", str(EVENTS / "deadline.json")],
        env=stack_environment(port, free_port(), tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then
    assert done.returncode == 1
    assert f"no local stack answers on http://127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_make_invoke_finds_a_stack_on_any_port_and_stage_through_its_stack_file(staged_stack: LocalStack) -> None:
    # Given a stack under /prod on a free port, and no PORT in the environment
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LETHE_")) and k != "PORT"}
    env["LETHE_LOCAL_DIR"] = str(staged_stack.outbox.parent)

    # When `make invoke` runs a function
    done = subprocess.run(
        ["make", "--no-print-directory", "invoke", "FN=DeadlineFunction", "EVENT=events/deadline.json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    # Then it reached that stack through its stack file and printed the result
    assert done.returncode == 0, done.stdout + done.stderr
    json.loads(done.stdout)


def test_under_a_stage_only_the_stage_is_served(staged_stack: LocalStack) -> None:
    origin = staged_stack.base_url.removesuffix("/prod")
    # The API answers under the stage, and the form and Swagger are there
    assert requests.get(f"{origin}/prod/discovery", timeout=30).status_code == 200
    assert requests.get(f"{origin}/prod", timeout=30).headers["Content-Type"].startswith("text/html")
    assert requests.get(f"{origin}/prod/swagger", timeout=30).status_code == 200
    # A path outside the stage is a JSON 404, as API Gateway refuses it
    outside = requests.get(f"{origin}/discovery", timeout=30)
    assert outside.status_code == 404
    assert outside.json()["error"]["code"] == "not_found"


def queue_counts(sqs: Any, url: str) -> dict[str, int]:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    return {k: int(v) for k, v in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"].items()}


def test_work_queue_messages_are_consumed_by_the_poller(local_stack: LocalStack) -> None:
    # Given a task sent straight to the work queue, for a request that does not exist
    sqs = local_stack.client("sqs")
    work, dlq = (sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in ("WorkQueue", "WorkDLQ"))
    request_id = f"req_e2e_{uuid.uuid4().hex}"
    body = {"kind": "dataset_task", "request_id": request_id, "dataset": "accounts", "attempt": 1}
    sqs.send_message(QueueUrl=work, MessageBody=json.dumps(body))

    # When the poller has run the worker, and the failed-task function on the dead-letter queue
    deadline = time.monotonic() + 90
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = {**queue_counts(sqs, work), **{f"dlq {k}": v for k, v in queue_counts(sqs, dlq).items()}}
        if not any(counts.values()):
            break
        time.sleep(0.3)

    # Then both queues are empty: the message was processed, or failed its way to the DLQ and was
    # parked after its consumer failed too (a DLQ has no DLQ of its own)
    assert not any(counts.values()), counts
    assert "FulfilmentWorkerFunction" in local_stack.output()


def start_and_expect_exit(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lethe_local"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_second_stack_on_a_busy_port_exits_2_with_one_line(local_stack: LocalStack, tmp_path: Path) -> None:
    # Given the API port is taken by the running stack
    env = stack_environment(local_stack.port, free_port(), tmp_path)

    # When
    done = start_and_expect_exit(env)

    # Then
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {local_stack.port}" in lines[0]
    assert "PORT=" in lines[0]


def test_a_busy_aws_port_names_lethe_aws_port(local_stack: LocalStack, tmp_path: Path) -> None:
    env = stack_environment(free_port(), local_stack.aws_port, tmp_path)

    done = start_and_expect_exit(env)

    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "LETHE_AWS_PORT=" in done.stderr


def test_a_broken_inventory_exits_2_naming_the_dataset(tmp_path: Path) -> None:
    # Given an inventory whose feedback retention period is not an ISO 8601 duration
    inventory = yaml.safe_load((REPO / "config" / "inventory.yaml").read_text())
    inventory["datasets"]["feedback"]["retention"]["after"] = "six months"
    bad = tmp_path / "inventory.yaml"
    bad.write_text(yaml.safe_dump(inventory))
    env = stack_environment(free_port(), free_port(), tmp_path, LETHE_INVENTORY=str(bad))

    # When
    done = start_and_expect_exit(env)

    # Then
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "feedback" in lines[0]
    assert "retention" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_broken_template_exits_2_with_one_line(tmp_path: Path) -> None:
    # Given a template.yaml that is not valid YAML
    bad = tmp_path / "template.yaml"
    bad.write_text("Resources:\n  WorkQueue: {Type: AWS::SQS::Queue\n")
    env = stack_environment(free_port(), free_port(), tmp_path, LETHE_TEMPLATE=str(bad))

    # When
    done = start_and_expect_exit(env)

    # Then
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "template.yaml" in lines[0]
    assert "not valid YAML" in lines[0]


def test_a_template_function_without_code_exits_2_naming_it(tmp_path: Path) -> None:
    # Given a template whose function points at a folder that does not exist
    text = (REPO / "template.yaml").read_text()
    bad = tmp_path / "template.yaml"
    bad.write_text(text.replace("CodeUri: functions/deadline/", "CodeUri: functions/deadline_missing/", 1))
    env = stack_environment(free_port(), free_port(), tmp_path, LETHE_TEMPLATE=str(bad))

    # When
    done = start_and_expect_exit(env)

    # Then
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "DeadlineFunction" in done.stderr
    assert "functions/deadline_missing" in done.stderr


def test_ctrl_c_stops_the_stack_cleanly(tmp_path: Path) -> None:
    # Given a second stack of its own, serving
    port = free_port()
    log = tmp_path / "stack.log"
    process = run_stack(stack_environment(port, free_port(), tmp_path, LETHE_ADMIN_TOKEN="t-ctrl-c"), log)
    wait_until_ready(process, f"http://127.0.0.1:{port}", log)
    assert json.loads((tmp_path / "stack.json").read_text())["api_url"] == f"http://127.0.0.1:{port}"

    # When Ctrl-C is pressed
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=60)

    # Then it exits 0 without a traceback, and its stack file is gone
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    assert not (tmp_path / "stack.json").exists()
