"""Fuzzing the OpenDSR processor API: schemathesis against the OpenAPI document the local stack serves at
/opendsr/v2/openapi.json, with a controller's token. Every generated request must get an answer that is
not a server error and that the document declares (status, content type, body schema). Few examples per
operation (OPENDSR_FUZZ_EXAMPLES), a fixed seed and one worker, so the run is short and repeatable."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.e2e.conftest import LocalStack
from tests.e2e.test_fuzz_openapi import SCHEMATHESIS

SEED = 20261201
MAX_EXAMPLES = int(os.environ.get("OPENDSR_FUZZ_EXAMPLES", "3"))
RUN_TIMEOUT_SECONDS = 300
# As in test_fuzz_openapi: response checks only (the schema cannot say that a subject_request_id already
# used is refused, so request-side acceptance checks would judge the wrong thing).
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance", "response_schema_conformance")


def run(spec_url: str, token: str, workdir: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    config = workdir / "schemathesis.toml"
    config.write_text('[generation]\ndatabase = "none"\n')
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
        # The coverage phase's boundary cases alone take longer than this file's budget; the fuzzing phase
        # sends valid and invalid data too.
        "--phases",
        "examples,fuzzing,stateful",
        "--request-timeout",
        "30",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
    ]
    done = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False
    )
    assert report.exists(), f"schemathesis wrote no report:\n{done.stdout}\n{done.stderr}"
    return done, json.loads(report.read_text())


def test_fuzz_the_opendsr_api_answers_as_documented(local_stack: LocalStack, tmp_path: Path) -> None:
    # Given the OpenDSR document the stack serves, fuzzed with a fixed seed
    done, report = run(f"{local_stack.base_url}/opendsr/v2/openapi.json", local_stack.admin_token, tmp_path)
    detail = f"{done.stdout[-15000:]}\n{done.stderr[-3000:]}\n--- stack ---\n{local_stack.output()[-5000:]}"

    # Then every operation was tested, and no answer was a server error or undocumented
    assert report["operations"]["selected"] == 8, report["operations"]
    assert report["operations"]["tested"] == report["operations"]["selected"], report["operations"]
    assert report["operations"]["errored"] == 0, detail
    assert report["errors"] == [], detail
    assert report["failures"] == [], detail
    assert done.returncode == 0, detail
    # And valid requests got through validation and the token check to the routes
    accepted = {
        operation: sum(phase.get("accepted", 0) for phase in phases.values())
        for operation, phases in report["valid_rates"].items()
    }
    # (the documented example is accepted once: its subject_request_id is then a duplicate, a 400)
    posted = accepted.get("POST /opendsr/v2/requests", 0) + accepted.get("POST /opendsr/v2/opengdpr_requests", 0)
    assert posted > 0, report["valid_rates"]
    assert accepted.get("GET /opendsr/v2/discovery", 0) > 0, report["valid_rates"]
