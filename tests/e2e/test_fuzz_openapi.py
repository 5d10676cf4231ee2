"""Fuzzing: schemathesis against the OpenAPI specs the local stack serves, the public one and the admin
one (with the operator token). Every generated request must get an answer that is not a server error and
that the spec documents: its status code, its content type, its headers and its body schema.

The fuzzer gets its own stack with the submission limits raised, so POST /requests reaches intake
instead of the per-IP limit after 20 cases (a 429 would still conform; it would just test less).
The run is deterministic in what it generates: a fixed seed, one worker, no example database."""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.e2e.conftest import free_port, run_stack, stack_environment, wait_until_ready

Run = tuple[subprocess.CompletedProcess[str], dict[str, Any]]

SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]  # the `st` of the running venv
SEED = 20261122
MAX_EXAMPLES = 10  # per operation and phase; with the coverage phase ~1,600 cases in all (>= 1,000 asserted)
MIN_CASES = 1000
RUN_TIMEOUT_SECONDS = 600
OUTBOX_WAIT_SECONDS = 15
CODE = re.compile(r"verification code is (\d{6})")

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
    outbox: Path
    aws_endpoint: str


@dataclass
class Seeds:
    """Ids that exist on the stack, so the fuzzer also reaches the code behind a found id (not only 404s)."""

    ids: list[str]  # requests in several states, and a legal hold
    subject_ids: list[str]  # consent subjects with a record
    tokens: list[str]  # signed unsubscribe tokens


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
        LETHE_CODES_PER_EMAIL_PER_HOUR="100000",
    )
    process = run_stack(env, log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, base_url, log)
        yield FuzzStack(
            base_url=base_url,
            admin_token=token,
            log=log,
            outbox=local_dir / "outbox",
            aws_endpoint=f"http://127.0.0.1:{aws_port}",
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def code_from_outbox(outbox: Path, email: str) -> str:
    deadline = time.monotonic() + OUTBOX_WAIT_SECONDS
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            if message["To"] == email:
                plain = message.get_body(("plain",))
                found = CODE.search(plain.get_content() if plain is not None else "")
                assert found, f"{path.name} carries no code"
                return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no email to {email} in {outbox}")


def seed(stack: FuzzStack) -> Seeds:
    """Requests (verified ones go on to fulfilment or approval, others stay unverified), a legal hold and
    consent records, made through the API as a user and an operator would."""
    base, admin = stack.base_url, {"Authorization": f"Bearer {stack.admin_token}"}
    ids: list[str] = []
    for n, (type_, verify) in enumerate(
        [("access", True), ("erasure", True), ("complaint", True), ("objection", False), ("erasure", False)]
    ):
        email = f"fuzz.seed{n}.{uuid.uuid4().hex[:8]}@example.org"
        filed = requests.post(f"{base}/requests", json={"type": type_, "email": email}, timeout=30)
        assert filed.status_code == 202, filed.text
        request_id = filed.json()["request_id"]
        if verify:
            code = code_from_outbox(stack.outbox, email)
            verified = requests.post(f"{base}/requests/{request_id}/verify", json={"code": code}, timeout=30)
            assert verified.status_code == 200, verified.text
        ids.append(request_id)
    hold = requests.post(
        f"{base}/admin/legal-holds", json={"dataset": "accounts", "reason": "fuzz seed"}, headers=admin, timeout=30
    )
    assert hold.status_code == 201, hold.text
    ids.append(hold.json()["hold_id"])
    body: dict[str, Any] = {
        "purposes": {"performance": True, "marketing_email": False},
        "policy_version": "2026-01",
        "source": "banner",
    }
    # A device's id is minted by Lethe; an account's choices come from the account service (admin API).
    recorded = requests.post(f"{base}/consents", json=body, timeout=30)
    assert recorded.status_code == 201, recorded.text
    account = requests.post(
        f"{base}/admin/consents", json={**body, "subject_id": "fuzz-account-0001"}, headers=admin, timeout=30
    )
    assert account.status_code == 201, account.text
    subject_ids = [recorded.json()["subject_id"], "fuzz-account-0001"]
    link = requests.post(
        f"{base}/admin/unsubscribe-links", json={"email": "fuzz.subscriber@example.org"}, headers=admin, timeout=30
    )
    assert link.status_code == 200, link.text
    token = parse_qs(urlsplit(link.json()["url"]).query)["token"][0]
    return Seeds(ids=ids, subject_ids=subject_ids, tokens=[token])


def config_text(seeds: Seeds) -> str:
    """No example database (no replay of earlier runs); ids and tokens drawn from the seeds half of the time."""
    return "\n".join(
        [
            "[generation]",
            'database = "none"',
            "[dictionaries.ids]",
            f"values = {json.dumps(seeds.ids)}",
            "[dictionaries.subject_ids]",
            f"values = {json.dumps(seeds.subject_ids)}",
            "[dictionaries.tokens]",
            f"values = {json.dumps(seeds.tokens)}",
            "[parameters]",
            '"query.token" = { dictionary = "tokens", probability = 0.5 }',
            '"path.id" = { dictionary = "ids", probability = 0.5 }',
            '"path.subject_id" = { dictionary = "subject_ids", probability = 0.5 }',
            "",
        ]
    )


def run_schemathesis(spec_url: str, token: str, workdir: Path, seeds: Seeds) -> Run:
    """One `st run` over a spec; returns the process and its JSON report."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "schemathesis.toml"
    config.write_text(config_text(seeds))
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
    seeds = seed(fuzz_stack)
    return {
        name: run_schemathesis(f"{fuzz_stack.base_url}{path}", fuzz_stack.admin_token, workdir / name, seeds)
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
    for operation in ("GET /discovery", "POST /requests", "GET /requests/{id}", "GET /unsubscribe"):
        assert accepted(public, operation) > 0, (operation, public["valid_rates"].get(operation))
    for operation in ("GET /admin/audit/verify", "POST /admin/legal-holds", "GET /admin/requests/{id}"):
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


# ------------------------------------------------------------------------------------ hand-written bodies
# What a generator from the specs does not write: JSON nested a thousand deep (2 KB), form and multipart
# bodies that are not UTF-8, addresses that are groups, lists or display names. Each went to a 502 (and an
# orphaned request row) before; each is sent to every operation of both specs that takes a body.
DEEP_JSON = b"[" * 1000 + b"]" * 1000
HOSTILE_BODIES = [
    ("deep-json", "application/json", DEEP_JSON),
    ("deep-json-object", "application/json", b'{"a": ' * 1000 + b"1" + b"}" * 1000),
    ("form-not-utf8", "application/x-www-form-urlencoded", b"type=access&email=a%40example.org&name=\xff\xfe"),
    (
        "multipart-not-utf8",
        "multipart/form-data; boundary=fence",
        b'--fence\r\nContent-Disposition: form-data; name="email"\r\n\r\n\xff\xfe@example.org\r\n--fence--\r\n',
    ),
]
ODD_ADDRESSES = ["a:;@example.org", "a@example.org,b", "x<y@evil.example>", "Ada <a@example.org>", '"a b"@example.org']


def request_summaries(stack: FuzzStack) -> int:
    """How many requests the stack holds (summary rows; event rows come and go with the work in flight)."""
    import boto3

    ddb = boto3.client(
        "dynamodb",
        endpoint_url=stack.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    total = 0
    for page in ddb.get_paginator("scan").paginate(
        TableName="RequestsTable",
        FilterExpression="sk = :summary",
        ExpressionAttributeValues={":summary": {"S": "SUMMARY"}},
        Select="COUNT",
    ):
        total += int(page["Count"])
    return total


def operations_with_a_body(stack: FuzzStack) -> list[tuple[str, str]]:
    """(method, url) of every operation of both served specs that declares a request body."""
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    found = []
    for spec_path in ("/openapi.json", "/admin/openapi.json"):
        spec = requests.get(f"{stack.base_url}{spec_path}", headers=headers, timeout=30).json()
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                if "requestBody" in operation:
                    concrete = re.sub(r"\{[^}]+\}", "req_fuzz_hostile0", path)
                    found.append((method.upper(), f"{stack.base_url}{concrete}"))
    return found


def assert_error_body(response: requests.Response, context: Any) -> None:
    assert 400 <= response.status_code < 500, (context, response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, (context, body)


@pytest.mark.parametrize(("case_id", "content_type", "body"), HOSTILE_BODIES, ids=[c[0] for c in HOSTILE_BODIES])
def test_hand_written_hostile_bodies_are_4xx_everywhere_and_leave_no_request(
    fuzz_stack: FuzzStack, case_id: str, content_type: str, body: bytes
) -> None:
    # Given every operation of both specs that takes a body, and the requests the stack holds
    operations = operations_with_a_body(fuzz_stack)
    assert len(operations) >= 8, operations
    before = request_summaries(fuzz_stack)
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {fuzz_stack.admin_token}"}

    # When each is sent the hostile body
    answers = {(m, u): requests.request(m, u, data=body, headers=headers, timeout=30) for m, u in operations}

    # Then none is a server error: each is a 4xx in the error schema
    for operation, response in answers.items():
        assert_error_body(response, (case_id, operation))
    # And no request was stored
    assert request_summaries(fuzz_stack) == before


@pytest.mark.parametrize("address", ODD_ADDRESSES)
def test_odd_addresses_are_4xx_on_every_route_that_takes_one_and_leave_no_request(
    fuzz_stack: FuzzStack, address: str
) -> None:
    # Given the requests the stack holds
    before = request_summaries(fuzz_stack)
    admin = {"Authorization": f"Bearer {fuzz_stack.admin_token}"}
    base = fuzz_stack.base_url

    # When each route that takes an address is given one that is not one plain address
    answers = {
        "POST /requests": requests.post(f"{base}/requests", json={"type": "access", "email": address}, timeout=30),
        "POST /admin/legal-holds": requests.post(
            f"{base}/admin/legal-holds", json={"email": address, "reason": "fuzz"}, headers=admin, timeout=30
        ),
        "POST /admin/unsubscribe-links": requests.post(
            f"{base}/admin/unsubscribe-links", json={"email": address}, headers=admin, timeout=30
        ),
        "GET /admin/suppressions": requests.get(
            f"{base}/admin/suppressions", params={"email": address}, headers=admin, timeout=30
        ),
    }

    # Then each is refused in the error schema, and no request was stored
    for route, response in answers.items():
        assert_error_body(response, (address, route))
    assert request_summaries(fuzz_stack) == before
