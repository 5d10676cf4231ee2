"""The `lethe` CLI against the running local stack: every verb, its JSON for scripts, its tables for people,
and its one-line errors."""

from __future__ import annotations

import email
import json
import re
import subprocess
import sys
import time
import uuid
from email import policy
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from typer.testing import CliRunner

from lethe_cli.main import app
from tests.e2e.conftest import REPO, LocalStack, free_port

runner = CliRunner()


def lethe(stack: LocalStack, *args: str, token: str | None = None, columns: int = 220) -> Any:
    """Run the CLI in process against the stack; returns the click Result."""
    env = {
        "LETHE_API_URL": stack.base_url,
        "LETHE_ADMIN_TOKEN": stack.admin_token if token is None else token,
        "COLUMNS": str(columns),
    }
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def lethe_json(stack: LocalStack, *args: str) -> Any:
    result = lethe(stack, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _code_for(outbox: Path, request_id: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob("*.eml")) if outbox.exists() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            if request_id in text and (match := re.search(r"code is (\d{6})", text)):
                return match.group(1)
        time.sleep(0.25)
    raise AssertionError(f"no verification email for request {request_id} in {outbox}")


def verified_request(stack: LocalStack, request_type: str, regulation: str = "gdpr", **extra: Any) -> str:
    """A request made and verified through the public API, as a subject would; returns its id."""
    body = {"type": request_type, "email": f"cli-{uuid.uuid4().hex[:10]}@example.com", "regulation": regulation}
    created = requests.post(f"{stack.base_url}/requests", json={**body, **extra}, timeout=30)
    assert created.status_code == 202, created.text
    request_id = str(created.json()["request_id"])
    code = _code_for(stack.outbox, request_id)
    verified = requests.post(f"{stack.base_url}/requests/{request_id}/verify", json={"code": code}, timeout=60)
    assert verified.status_code < 300, verified.text
    return request_id


# ---------------------------------------------------------------- requests
def test_requests_list_show_extend_approve(local_stack: LocalStack) -> None:
    # Given a rectification request, which waits for an operator
    request_id = verified_request(local_stack, "rectification", corrections={"name": "Ada King"})

    # When the operator lists what awaits approval
    listed = lethe_json(local_stack, "requests", "list", "--status", "awaiting_approval")
    # Then it is there
    assert request_id in {r["request_id"] for r in listed["requests"]}

    # And show gives it with its events
    shown = lethe_json(local_stack, "requests", "show", request_id)
    assert shown["request_id"] == request_id
    assert shown["status"] == "awaiting_approval"
    assert shown["events"]

    # When the deadline is extended, the due date moves later
    extended = lethe_json(local_stack, "requests", "extend", request_id, "--reason", "complex correction")
    assert extended["due_at"] > shown["due_at"]

    # When it is approved, it leaves awaiting_approval
    approved = lethe_json(local_stack, "requests", "approve", request_id)
    assert approved["status"] in {"pending", "in_progress", "completed"}


def test_requests_list_shows_a_table_for_people(local_stack: LocalStack) -> None:
    request_id = verified_request(local_stack, "complaint", details="cli table check")
    result = lethe(local_stack, "requests", "list", "--status", "awaiting_approval")
    assert result.exit_code == 0, result.output
    assert "request_id" in result.stdout
    assert "complaint" in result.stdout
    assert request_id[:8] in result.stdout


def test_requests_deny_with_reason(local_stack: LocalStack) -> None:
    request_id = verified_request(local_stack, "complaint", details="cli deny check")
    denied = lethe_json(local_stack, "requests", "deny", request_id, "--reason", "not about personal data")
    assert denied["status"] == "denied"
    assert lethe_json(local_stack, "requests", "show", request_id)["status"] == "denied"


def test_requests_retry_refuses_a_request_that_has_not_failed(local_stack: LocalStack) -> None:
    # Given a request that is not failed (it awaits approval)
    request_id = verified_request(local_stack, "complaint", details="cli retry check")
    # When the operator retries it
    result = lethe(local_stack, "requests", "retry", request_id)
    # Then the CLI says so in one line and exits 1
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line
    assert "409" in line


def test_requests_list_follows_pages(local_stack: LocalStack) -> None:
    ids = {verified_request(local_stack, "complaint", details=f"page {n}") for n in range(3)}
    everything = lethe_json(local_stack, "requests", "list", "--status", "awaiting_approval", "--limit", "1")
    assert ids <= {r["request_id"] for r in everything["requests"]}


def test_requests_list_shows_open_requests_by_default_and_every_status_with_all(local_stack: LocalStack) -> None:
    # Given a request awaiting approval, one still unverified, and one denied
    waiting = verified_request(local_stack, "complaint", details="open by default")
    created = requests.post(
        f"{local_stack.base_url}/requests",
        json={"type": "access", "email": f"cli-{uuid.uuid4().hex[:10]}@example.com"},
        timeout=30,
    )
    unverified = created.json()["request_id"]
    denied = verified_request(local_stack, "complaint", details="denied, so finished")
    lethe_json(local_stack, "requests", "deny", denied, "--reason", "not about personal data")

    # When the operator lists requests with no filter
    listed = lethe_json(local_stack, "requests", "list")
    # Then every open request is there, whatever its status, and the finished one is not
    ids = {r["request_id"] for r in listed["requests"]}
    assert {waiting, unverified} <= ids
    assert denied not in ids
    assert {r["status"] for r in listed["requests"]} <= {
        "identity_unverified",
        "pending",
        "awaiting_approval",
        "in_progress",
        "failed",
    }
    # And --all lists every status, the denied one included
    everything = {r["request_id"] for r in lethe_json(local_stack, "requests", "list", "--all")["requests"]}
    assert {waiting, unverified, denied} <= everything


def test_requests_table_fits_160_columns(local_stack: LocalStack) -> None:
    # Given open requests (their subject refs are 64-character HMACs)
    request_id = verified_request(local_stack, "child_data_report", details="fits the terminal")
    # When they are listed for a person on a 160-column terminal
    result = lethe(local_stack, "requests", "list", columns=160)
    # Then no line is wider, and each request is one line: its id, type, status and times side by side
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 160
    row = next(line for line in lines if request_id in line)
    assert "child_data_report" in row and "awaiting_approval" in row
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", row)
    assert not re.search(r"[0-9a-f]{40}", result.stdout), "subject refs are shortened in tables"
    assert not re.search(r"T\d\d:\d\d:\d\d\.\d+", result.stdout), "timestamps are compact in tables"


# Text a subject or an operator might send: rich markup (a clickable link, a closing tag that crashes a
# markup parser), terminal escapes (clear the screen, an OSC 8 hyperlink), a carriage return and a bidi override.
HOSTILE = "[link=https://evil.example]click[/link] [/x] \x1b[2J\x1b]8;;https://evil.example\x07here\r\u202eevil"


def assert_shown_as_plain_text(output: str) -> None:
    assert "[link=https://evil.example]click[/link]" in output
    assert "[/x]" in output
    assert "\x1b" not in output and "\x07" not in output and "\r" not in output and "\u202e" not in output
    # Made visible as an escape, "\\x1b" (or JSON's "\\u001b" inside a JSON value)
    assert re.search(r"\\(x1b|u001b)\[2J", output) and "\\u202e" in output


def test_subject_supplied_text_is_shown_as_plain_text(local_stack: LocalStack) -> None:
    # Given a rectification whose correction carries markup (intake refuses control characters in a
    # name, so terminal escapes reach the CLI only in operator text, tested below)
    markup = "[link=https://evil.example]click[/link] [/x]"
    request_id = verified_request(local_stack, "rectification", corrections={"name": markup})
    # When the operator shows it, then approves it
    shown = lethe(local_stack, "requests", "show", request_id)
    approved = lethe(local_stack, "requests", "approve", request_id)
    # Then both print the text as written, and neither fails
    assert shown.exit_code == 0, shown.output
    assert approved.exit_code == 0, approved.output
    for output in (shown.stdout, approved.stdout):
        assert "[link=https://evil.example]click[/link]" in output and "[/x]" in output


def test_operator_supplied_text_is_shown_as_plain_text(local_stack: LocalStack) -> None:
    # Given a denial and a legal hold whose reasons carry markup and terminal escapes
    request_id = verified_request(local_stack, "complaint", details="hostile reason")
    denied = lethe(local_stack, "requests", "deny", request_id, "--reason", HOSTILE)
    subject = f"hold-{uuid.uuid4().hex[:8]}@example.com"
    placed = lethe(local_stack, "holds", "place", "--email", subject, "--reason", HOSTILE)
    listed = lethe(local_stack, "holds", "list", "--active")
    # Then every view prints them as written
    for result in (denied, placed, listed):
        assert result.exit_code == 0, result.output
        assert_shown_as_plain_text(result.stdout)


def test_an_error_message_from_the_server_is_plain_text(local_stack: LocalStack) -> None:
    # When the API's error names what the operator sent (an unknown status, with markup in it)
    result = lethe(local_stack, "requests", "list", "--status", "[/x]\x1b[2J")
    # Then the one-line error shows it as written
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr
    assert result.stderr.startswith("error:")


# ---------------------------------------------------------------- legal holds
def test_holds_place_list_lift(local_stack: LocalStack) -> None:
    subject = f"hold-{uuid.uuid4().hex[:8]}@example.com"
    placed = lethe_json(local_stack, "holds", "place", "--email", subject, "--reason", "litigation 2026-17")
    hold_id = next(v for k, v in placed.items() if k in ("hold_id", "id"))
    listed = lethe_json(local_stack, "holds", "list", "--active")
    assert hold_id in json.dumps(listed)
    lifted = lethe_json(local_stack, "holds", "lift", hold_id)
    assert hold_id in json.dumps(lifted)
    assert hold_id not in json.dumps(lethe_json(local_stack, "holds", "list", "--active"))


def test_holds_place_needs_a_target(local_stack: LocalStack) -> None:
    result = lethe(local_stack, "holds", "place", "--reason", "nothing named")
    assert result.exit_code == 2
    assert "--email or --dataset" in result.stderr


# ---------------------------------------------------------------- consent side
def test_policy_publish(local_stack: LocalStack) -> None:
    version = f"cli-{uuid.uuid4().hex[:8]}"
    published = lethe_json(local_stack, "policy", "publish", version, "--summary", "Clearer retention periods.")
    assert version in json.dumps(published)


def test_unsubscribe_link_and_suppression_check(local_stack: LocalStack) -> None:
    address = f"unsub-{uuid.uuid4().hex[:8]}@example.com"
    link = lethe_json(local_stack, "unsubscribe-link", address)
    assert "/unsubscribe?token=" in json.dumps(link)
    before = lethe_json(local_stack, "suppressions", "check", address)
    assert before["suppressed"] is False

    # When the link is used (one-click POST), the address is suppressed
    url = re.search(r"https?://[^\"\s>]+/unsubscribe\?token=[^\"\s>]+", json.dumps(link))
    assert url is not None
    path_and_query = url.group(0).split("/unsubscribe", 1)[1]
    one_click = requests.post(
        f"{local_stack.base_url}/unsubscribe{path_and_query}", data="List-Unsubscribe=One-Click", timeout=30
    )
    assert one_click.status_code < 300, one_click.text
    assert lethe_json(local_stack, "suppressions", "check", address)["suppressed"] is True


# ---------------------------------------------------------------- retention and audit
def test_retention_report_is_a_table_per_dataset(local_stack: LocalStack) -> None:
    # Given the datasets of the inventory
    datasets = yaml.safe_load((REPO / "config" / "inventory.yaml").read_text())["datasets"]
    # When the report is shown to a person
    table = lethe(local_stack, "retention", "report")
    # Then each dataset is a row with its counts per action
    assert table.exit_code == 0, table.output
    assert "would_delete" in table.stdout and "would_anonymize" in table.stdout
    for dataset, spec in datasets.items():
        # (a manual dataset is no table Lethe reaches: nothing of it is swept)
        assert (dataset in table.stdout) is (spec.get("store") != "manual"), dataset


def test_retention_run_wait_follows_the_sweep_to_its_end(local_stack: LocalStack) -> None:
    # Given a moment far enough ahead that seeded data is due
    at = "2031-01-01T00:00:00Z"
    # When the sweep runs as of then, waiting for it
    result = lethe(local_stack, "retention", "run", "--wait", "--at", at, "--json")
    # Then the progress bar followed it, and it ended with nothing left due at that moment
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["time"] == at
    assert outcome["due_before"] > 0
    assert outcome["due_after"] == 0
    assert outcome["result"]["tasks"] > 0
    assert "retention sweep" in result.stderr


def put_due_diagnostics(stack: LocalStack, count: int) -> None:
    """Diagnostics rows recorded long ago: the dataset is swept by Scan, so they are due at any later moment."""
    table = stack.table("DiagnosticsTable")
    for n in range(count):
        table.put_item(
            Item={
                "user_email": f"cli.due.{uuid.uuid4().hex[:8]}@example.net",
                "recorded_at": f"2024-01-{n + 1:02d}T00:00:00+00:00",
                "ip_address": "192.0.2.1",
                "operating_system": "Linux",
                "browser": "Firefox 133",
            }
        )


def test_retention_run_wait_for_people_counts_to_a_known_total(local_stack: LocalStack) -> None:
    # Given rows due whenever the sweep runs (the sweep as of 2031 may already have run on this stack; a
    # day after it, its index buckets are eight days per shard, not a year's)
    put_due_diagnostics(local_stack, 3)
    # When the sweep is followed by a person (no --json)
    result = lethe(local_stack, "retention", "run", "--wait", "--at", "2031-01-02T00:00:00Z")
    # Then the bar counted to the total the report gave before the sweep, never "?"
    assert result.exit_code == 0, result.output
    due = re.search(r"due_before\s+(\d+)", result.stdout)
    assert due is not None, result.stdout
    assert int(due.group(1)) >= 3
    assert f"{due.group(1)}/{due.group(1)}" in result.stderr
    assert "/?" not in result.stderr
    # And the outcome is a summary and a table per dataset, with no JSON in a cell
    assert "{" not in result.stdout and "run_id" in result.stdout
    inventory = yaml.safe_load((REPO / "config" / "inventory.yaml").read_text())["datasets"]
    # Every dataset Lethe sweeps itself (a manual one is worked by a person)
    datasets = [name for name, spec in inventory.items() if spec.get("store") != "manual"]
    rows = [line for line in result.stdout.splitlines() if any(f" {name} " in line for name in datasets)]
    assert len(rows) == len(datasets)


def test_retention_run_without_wait_returns_the_planner_result(local_stack: LocalStack) -> None:
    result = lethe(local_stack, "retention", "run", "--json")
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout), dict)


def test_audit_verify(local_stack: LocalStack) -> None:
    verified = lethe_json(local_stack, "audit", "verify")
    assert verified["ok"] is True
    assert verified["records"] > 0


# ---------------------------------------------------------------- errors
def test_wrong_token_is_one_clear_line(local_stack: LocalStack) -> None:
    result = lethe(local_stack, "requests", "list", token="not-the-token")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "not authorized" in result.stderr and "403" in result.stderr


def test_unknown_request_is_not_found(local_stack: LocalStack) -> None:
    result = lethe(local_stack, "requests", "show", str(uuid.uuid4()))
    assert result.exit_code == 1
    assert "not found" in result.stderr and "404" in result.stderr


def test_stack_not_running_is_one_clear_line() -> None:
    port = free_port()
    result = runner.invoke(
        app, ["requests", "list"], env={"LETHE_API_URL": f"http://127.0.0.1:{port}", "LETHE_ADMIN_TOKEN": "x"}
    )
    assert result.exit_code == 1
    assert "not answering" in result.stderr and "make run" in result.stderr


def test_installed_console_script_runs(local_stack: LocalStack) -> None:
    script = Path(sys.executable).parent / "lethe"
    if not script.exists():
        pytest.skip("the lethe console script is not installed; run `make venv`")
    env = {"LETHE_API_URL": local_stack.base_url, "LETHE_ADMIN_TOKEN": local_stack.admin_token, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [str(script), "--json", "audit", "verify"], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True


def test_lethe_finds_a_stack_on_any_port_and_stage_through_its_files(
    staged_stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stack under /prod on a free port, whose .local holds stack.json and the generated admin token
    local_dir = staged_stack.outbox.parent
    assert json.loads((local_dir / "stack.json").read_text())["api_url"] == staged_stack.base_url
    below = local_dir.parent / "some" / "folder"
    below.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(below)
    # When lethe runs from a folder below it, with no URL, token or local dir given
    unset = {"LETHE_API_URL": None, "LETHE_ADMIN_TOKEN": None, "LETHE_LOCAL_DIR": None, "PORT": None}
    result = runner.invoke(app, ["--json", "audit", "verify"], env=unset, catch_exceptions=False)
    # Then it reached that stack, with its token
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True
