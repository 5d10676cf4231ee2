"""Fuzzing: schemathesis against the OpenAPI specs the local stack serves, the public one and the admin
one (with the operator token). Every generated request must get an answer that is not a server error and
that the spec documents: its status code, its content type, its headers and its body schema.

The fuzzer gets its own stack with the submission limits raised, so POST /requests reaches intake
instead of the per-IP limit after 20 cases (a 429 would still conform; it would just test less).
The run is deterministic in what it generates: a fixed seed, one worker, no example database."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import free_port, run_stack, stack_environment, wait_until_ready

Run = tuple[subprocess.CompletedProcess[str], dict[str, Any]]

SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]  # the `st` of the running venv
SEED = 20261122
MAX_EXAMPLES = 30  # per operation and phase; enough for >= 1,000 cases across both specs
MIN_CASES = 1000
RUN_TIMEOUT_SECONDS = 600

# What a response must satisfy. Left out, with the reason:
# - negative_data_rejection / positive_data_acceptance judge the *request* validation against the
#   schema, and the schema cannot say everything the API checks: a 6-digit code that is not the emailed
#   one, an unsubscribe token that is not signed, a purpose name that is not in the inventory, a
#   device linked to itself are schema-valid and rightly refused (400/409/423); and an internationalized
#   address (RFC 6531) is accepted though the fuzzer's ASCII "email" format calls it invalid.
# - unsupported_method / allow_header_conformance probe methods the spec does not declare; those never
#   reach a function (API Gateway answers them), so they test the local router, not Lethe's API.
# - missing_required_header, ignored_auth: no route declares a required header or a security scheme
#   (the admin API is IAM-authorized in AWS; the bearer token is a local stand-in sent on every case).
# - use_after_free, ensure_resource_availability: resource semantics (a canceled request still has a
#   status; a lifted hold is still listed) that are this API's contract, not a defect.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


@dataclass
class FuzzStack:
    base_url: str
    admin_token: str
    log: Path


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzStack]:
    local_dir = tmp_path_factory.mktemp("lethe-fuzz")
    port, aws_port = free_port(), free_port()
    token = secrets.token_urlsafe(16)
    log = local_dir / "stack.log"
    env = stack_environment(
        port,
        aws_port,
        local_dir,
        LETHE_ADMIN_TOKEN=token,
        LETHE_SUBMISSIONS_PER_IP_PER_HOUR="100000",
        LETHE_SUBMISSIONS_PER_EMAIL_PER_HOUR="100000",
    )
    process = run_stack(env, log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, base_url, log)
        yield FuzzStack(base_url=base_url, admin_token=token, log=log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_schemathesis(spec_url: str, token: str, workdir: Path) -> Run:
    """One `st run` over a spec; returns the process and its JSON report."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "schemathesis.toml"
    config.write_text('[generation]\ndatabase = "none"\n')  # no replay of earlier runs' examples
    report = workdir / "report.json"
    command = [
        *SCHEMATHESIS,
        "--config-file",
        str(config),
        "run",
        spec_url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--output-sanitize",
        "false",
        "--no-color",
    ]
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False
    )
    assert report.exists(), f"schemathesis wrote no report:\n{done.stdout}\n{done.stderr}"
    return done, json.loads(report.read_text())


@pytest.fixture(scope="module")
def fuzz_runs(fuzz_stack: FuzzStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    workdir = tmp_path_factory.mktemp("schemathesis")
    return {
        name: run_schemathesis(f"{fuzz_stack.base_url}{path}", fuzz_stack.admin_token, workdir / name)
        for name, path in (("public", "/openapi.json"), ("admin", "/admin/openapi.json"))
    }


def failure_text(done: subprocess.CompletedProcess[str], report: dict[str, Any], stack: FuzzStack) -> str:
    return (
        f"schemathesis exit {done.returncode}; failures {report.get('failures')}; errors {report.get('errors')}\n"
        f"{done.stdout[-20000:]}\n{done.stderr[-4000:]}\n"
        f"--- stack log (tail) ---\n{stack.log.read_text(errors='replace')[-6000:]}"
    )


def accepted(report: dict[str, Any], operation: str) -> int:
    """How many cases of an operation got a 2xx, over all phases."""
    return sum(phase.get("accepted", 0) for phase in report["valid_rates"].get(operation, {}).values())


@pytest.mark.parametrize("spec", ["public", "admin"])
def test_fuzz_every_operation_answers_as_documented(
    spec: str, fuzz_runs: dict[str, Run], fuzz_stack: FuzzStack
) -> None:
    # Given the spec the stack serves, fuzzed with a fixed seed
    done, report = fuzz_runs[spec]

    # Then every operation was tested and every response was documented and conformed
    assert report["operations"]["selected"] > 0
    assert report["operations"]["tested"] == report["operations"]["selected"], report["operations"]
    assert report["operations"]["errored"] == 0, failure_text(done, report, fuzz_stack)
    assert report["errors"] == [], failure_text(done, report, fuzz_stack)
    assert report["failures"] == [], failure_text(done, report, fuzz_stack)
    assert report["test_cases"]["with_failures"] == 0, failure_text(done, report, fuzz_stack)
    assert done.returncode == 0, failure_text(done, report, fuzz_stack)


def test_fuzz_runs_at_least_a_thousand_cases_and_reaches_the_admin_api(
    fuzz_runs: dict[str, Run],
) -> None:
    # Given both fuzz runs
    cases = {spec: report["test_cases"]["generated"] for spec, (_, report) in fuzz_runs.items()}

    # Then together they sent at least 1,000 cases, each spec a real share of them
    assert sum(cases.values()) >= MIN_CASES, cases
    assert min(cases.values()) >= MIN_CASES // 4, cases
    # And the cases got past validation and the token check to the routes (a wrong token would be a 403)
    _, public = fuzz_runs["public"]
    _, admin = fuzz_runs["admin"]
    for operation in ("GET /discovery", "POST /requests"):
        assert accepted(public, operation) > 0, (operation, public["valid_rates"].get(operation))
    for operation in ("GET /admin/audit/verify", "POST /admin/unsubscribe-links", "POST /admin/legal-holds"):
        assert accepted(admin, operation) > 0, (operation, admin["valid_rates"].get(operation))


def test_spec_declares_the_error_body_on_every_operation(fuzz_stack: FuzzStack) -> None:
    # Given both served specs
    public = requests.get(f"{fuzz_stack.base_url}/openapi.json", timeout=30).json()
    headers = {"Authorization": f"Bearer {fuzz_stack.admin_token}"}
    admin = requests.get(f"{fuzz_stack.base_url}/admin/openapi.json", headers=headers, timeout=30).json()

    for spec, extra in ((public, set()), (admin, {"401", "403"})):
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                declared = operation["responses"]
                # Then each operation declares a 2xx/3xx answer
                assert any(code.startswith(("2", "3")) for code in declared), (method, path, sorted(declared))
                # And our error body (not the resolver's default 422 schema) for every error it can give
                for code in {"400", "415", "422", "429"} | extra:
                    schema = declared[code]["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, code, schema)


@pytest.mark.parametrize(
    ("case_id", "content_type", "body", "status", "code"),
    [
        ("not-utf8", "application/json", b"\xff\xfe{", 400, "malformed_body"),
        ("multipart-no-boundary", "multipart/form-data", b'{"code": "123456"}', 400, "malformed_body"),
        ("unsupported-type", "text/plain", b'{"code": "123456"}', 415, "unsupported_media_type"),
    ],
)
def test_malformed_bodies_are_4xx_in_the_error_schema(
    fuzz_stack: FuzzStack, case_id: str, content_type: str, body: bytes, status: int, code: str
) -> None:
    # Given a body the resolver cannot parse (findings of the fuzzer: these were 502s or the resolver's body)
    # When it is posted to a route that takes a body
    response = requests.post(
        f"{fuzz_stack.base_url}/requests/req_{case_id.replace('-', '_')}/verify",
        data=body,
        headers={"Content-Type": content_type},
        timeout=30,
    )

    # Then it is a 4xx with the declared error body
    assert response.status_code == status, response.text
    assert response.json() == {"error": {"code": code, "message": response.json()["error"]["message"]}}
