"""`lethe`: the admin API's verbs for an operator at a terminal.

Targets the local stack by default (LETHE_API_URL, token from LETHE_ADMIN_TOKEN or .local/admin-token),
or a deployed stack with --stack NAME (API URL from its ApiUrl output, calls signed with SigV4)."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from lethe.domain import TERMINAL_STATUSES, Status
from lethe_cli import render
from lethe_cli.client import ApiClient, CliError, Target

app = typer.Typer(help="Operate Lethe: requests, legal holds, policy versions, suppression, retention, audit.")
requests_app = typer.Typer(help="Data-subject requests.")
holds_app = typer.Typer(help="Legal holds: data under hold is isolated, never erased.")
policy_app = typer.Typer(help="Privacy policy versions.")
suppressions_app = typer.Typer(help="The marketing suppression list.")
retention_app = typer.Typer(help="Scheduled retention: report and sweep.")
audit_app = typer.Typer(help="The append-only, hash-chained audit.")
backups_app = typer.Typer(help="Restored backups: erase again what Lethe erased since the backup.")
app.add_typer(requests_app, name="requests")
app.add_typer(holds_app, name="holds")
app.add_typer(policy_app, name="policy")
app.add_typer(suppressions_app, name="suppressions")
app.add_typer(retention_app, name="retention")
app.add_typer(audit_app, name="audit")
app.add_typer(backups_app, name="backups")
tasks_app = typer.Typer(help="Manual datasets' tasks: work a person does in a system Lethe cannot reach.")
recipients_app = typer.Typer(help="Notices to the recipients of a dataset (GDPR Art. 19).")
app.add_typer(tasks_app, name="tasks")
app.add_typer(recipients_app, name="recipients")
callbacks_app = typer.Typer(help="OpenDSR status callbacks to controllers that kept failing.")
app.add_typer(callbacks_app, name="callbacks")

console = Console()
errors = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer, for scripts.")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why; told to the subject where the API says so.")]


class State:
    stack: str | None = None
    region: str | None = None
    api_url: str | None = None
    json: bool = False


state = State()


@app.callback()
def main(
    stack: Annotated[str | None, typer.Option(help="Deployed CloudFormation stack (default: the local stack).")] = None,
    region: Annotated[str | None, typer.Option(help="AWS region of --stack.")] = None,
    api_url: Annotated[str | None, typer.Option(envvar="LETHE_API_URL", help="Base URL of the local stack.")] = None,
    json_out: JsonOpt = False,
) -> None:
    state.stack, state.region, state.api_url, state.json = stack, region, api_url, json_out
    # The consoles were made at import; a command run in process (tests, a script) may give COLUMNS later.
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        console.width = errors.width = int(columns)


def target() -> Target:
    return Target.deployed(state.stack, state.region) if state.stack else Target.local(state.api_url)


def client() -> ApiClient:
    return ApiClient(target())


def run(action: Any, *, as_json: bool, title: str | None = None) -> Any:
    """Do one API call and show its answer; a CliError becomes one red line and exit code 1."""
    try:
        answer = action()
    except CliError as exc:
        errors.print(render.error_line(exc), soft_wrap=True)
        raise typer.Exit(1) from None
    render.show(console, answer, as_json=as_json or state.json, title=title)
    return answer


def quoted(value: str) -> str:
    return urllib.parse.quote(value, safe="")


# ---------------------------------------------------------------- requests
NEXT_KEYS = ("next_cursor", "next_token", "next", "cursor")


def _next_cursor(page: Any) -> tuple[str, str] | None:
    if isinstance(page, dict):
        for key in NEXT_KEYS:
            if page.get(key):
                return key, str(page[key])
    return None


OPEN_STATUSES = tuple(s.value for s in Status if s not in TERMINAL_STATUSES)


@requests_app.command("list")
def requests_list(
    status: Annotated[
        list[str] | None, typer.Option(help="Only this status (repeatable). Default: every open status.")
    ] = None,
    all_statuses: Annotated[bool, typer.Option("--all", help="Every status, finished ones included.")] = False,
    limit: Annotated[int | None, typer.Option(help="Page size of each call (the API's default is 50).")] = None,
    cursor: Annotated[
        str | None, typer.Option(help="One page of a single --status, from a previous page's cursor.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List requests, earliest due first: the open ones (not completed, denied, canceled or expired) unless
    --status or --all says otherwise. Every page is followed, unless --cursor asks for one page."""
    statuses = list(status or ([s.value for s in Status] if all_statuses else OPEN_STATUSES))
    if cursor and len(statuses) != 1:
        errors.print(render.error_line("--cursor continues the listing of one status; give it with --status"))
        raise typer.Exit(2)

    def fetch() -> Any:
        api = client()
        if cursor:
            return api.get("/admin/requests", status=statuses[0], limit=limit, cursor=cursor)
        collected: list[dict[str, Any]] = []
        for one in statuses:
            page = api.get("/admin/requests", status=one, limit=limit)
            collected.extend(render.rows_of(page) or [])
            while (nxt := _next_cursor(page)) is not None:
                page = api.get("/admin/requests", status=one, limit=limit, cursor=nxt[1])
                collected.extend(render.rows_of(page) or [])
        collected.sort(key=lambda r: str(r.get("due_at") or ""))
        return {"requests": collected}

    answer = run(fetch, as_json=json_out, title="requests")
    nxt = _next_cursor(answer)
    if nxt and not (json_out or state.json):
        console.print(render.plain(f"more: --status {statuses[0]} --cursor {nxt[1]}", style="dim"))


@requests_app.command("show")
def requests_show(request_id: str, json_out: JsonOpt = False) -> None:
    """One request with its events."""
    run(lambda: client().get(f"/admin/requests/{quoted(request_id)}"), as_json=json_out, title="request")


@requests_app.command("approve")
def requests_approve(request_id: str, json_out: JsonOpt = False) -> None:
    """Approve a request that awaits approval."""
    run(lambda: client().post(f"/admin/requests/{quoted(request_id)}/approve"), as_json=json_out)


@requests_app.command("deny")
def requests_deny(request_id: str, reason: ReasonOpt, json_out: JsonOpt = False) -> None:
    """Deny a request; the reason is emailed to the subject."""
    run(lambda: client().post(f"/admin/requests/{quoted(request_id)}/deny", {"reason": reason}), as_json=json_out)


@requests_app.command("extend")
def requests_extend(request_id: str, reason: ReasonOpt, json_out: JsonOpt = False) -> None:
    """Extend the deadline within the regulation's limit; the reason is sent to the subject."""
    run(lambda: client().post(f"/admin/requests/{quoted(request_id)}/extend", {"reason": reason}), as_json=json_out)


@requests_app.command("retry")
def requests_retry(request_id: str, json_out: JsonOpt = False) -> None:
    """Retry a failed request from where it stopped."""
    run(lambda: client().post(f"/admin/requests/{quoted(request_id)}/retry"), as_json=json_out)


# ---------------------------------------------------------------- legal holds
@holds_app.command("place")
def holds_place(
    reason: ReasonOpt,
    email: Annotated[str | None, typer.Option(help="Hold one subject's data.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Hold a whole dataset.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Place a legal hold on a subject (--email) or a dataset (--dataset)."""
    if not email and not dataset:
        errors.print(render.error_line("give --email or --dataset"))
        raise typer.Exit(2)
    body = {k: v for k, v in {"email": email, "dataset": dataset, "reason": reason}.items() if v}
    run(lambda: client().post("/admin/legal-holds", body), as_json=json_out, title="legal hold")


@holds_app.command("lift")
def holds_lift(hold_id: str, json_out: JsonOpt = False) -> None:
    """Lift a legal hold."""
    run(lambda: client().delete(f"/admin/legal-holds/{quoted(hold_id)}"), as_json=json_out)


@holds_app.command("list")
def holds_list(
    active: Annotated[bool, typer.Option("--active", help="Only holds still in force.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """List legal holds."""
    run(lambda: client().get("/admin/legal-holds", active=str(active).lower()), as_json=json_out, title="legal holds")


# ---------------------------------------------------------------- consent side
@policy_app.command("publish")
def policy_publish(
    version: str,
    summary: Annotated[str, typer.Option(help="What changed, in plain words; sent to subscribers.")],
    json_out: JsonOpt = False,
) -> None:
    """Publish a privacy policy version (subscribers are notified)."""
    body = {"version": version, "summary": summary}
    run(lambda: client().post("/admin/policy-versions", body), as_json=json_out, title="policy version")


@app.command("unsubscribe-link")
def unsubscribe_link(email: str, json_out: JsonOpt = False) -> None:
    """The signed one-click unsubscribe link and List-Unsubscribe headers for an address."""
    run(lambda: client().post("/admin/unsubscribe-links", {"email": email}), as_json=json_out, title="unsubscribe")


@suppressions_app.command("check")
def suppressions_check(email: str, json_out: JsonOpt = False) -> None:
    """Whether an address is on the suppression list."""
    run(lambda: client().get("/admin/suppressions", email=email), as_json=json_out, title="suppression")


# ---------------------------------------------------------------- retention
ACTION_KEYS = frozenset(
    {"delete", "anonymize", "isolate", "would_delete", "would_anonymize", "would_isolate", "deleted", "isolated"}
)


def due_count(report: Any) -> int | None:
    """How many items the retention report says are due now: a top-level total ("due", "total_due") if
    the report gives one, else the sum of its per-action counts at any depth. None when it has neither."""
    if isinstance(report, dict):
        for key in ("total_due", "due", "items_due"):
            if isinstance(report.get(key), int):
                return int(report[key])
    found: list[int] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ACTION_KEYS and isinstance(value, int) and not isinstance(value, bool):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(report)
    return sum(found) if found else None


AtOpt = Annotated[str | None, typer.Option(help="As if now were this ISO 8601 time, e.g. 2027-06-01T00:00:00Z.")]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@retention_app.command("report")
def retention_report(at: AtOpt = None, json_out: JsonOpt = False) -> None:
    """Dry run: what each dataset would delete, anonymize or isolate now (or at --at)."""
    when = _iso(parse_at(at)) if at else None
    run(lambda: client().get("/admin/retention/report", at=when), as_json=json_out, title="retention report")


def scheduled_event(at: datetime) -> dict[str, Any]:
    """The EventBridge event the daily schedule sends; the sweep treats its `time` as now."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": _iso(at),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/lethe-retention-manual"],
        "detail": {},
    }


def parse_at(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 time: {value}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _invoke_sweep(tgt: Target, api: ApiClient, event: dict[str, Any]) -> Any:
    if tgt.is_local:
        return api.post("/_local/invoke/RetentionFunction", event)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        result = tgt.session.client("lambda").invoke(
            FunctionName=tgt.function_name("RetentionFunction"), Payload=json.dumps(event).encode()
        )
    except (BotoCoreError, ClientError) as exc:
        raise CliError(f"cannot invoke the retention sweep: {exc}") from exc
    payload = result["Payload"].read()
    if result.get("FunctionError"):
        raise CliError(f"the retention sweep failed: {payload.decode(errors='replace')[:300]}")
    return json.loads(payload or b"{}")


def _report_due(api: ApiClient, at: str) -> int | None:
    try:
        return due_count(api.get("/admin/retention/report", at=at))
    except CliError:
        return None


# Each report is a dry run that reads the datasets, and locally it takes the stack's one runtime from the
# sweep it follows: the next read waits this many times as long as the last one took (at most
# MAX_POLL_SECONDS), so following a sweep costs it a fifth of its time at most, however large the tables.
REPORT_PACE = 4.0
MAX_POLL_SECONDS = 10.0

# Locally the sweep's invoke returns once the queues are drained, or after the stack's drain timeout
# (120 s) on a slow machine while its tasks still run: the bar then follows the count while it falls,
# and stops once it has not changed for this long (a busy machine can take tens of seconds per task).
LOCAL_SETTLE_SECONDS = 60.0


def _follow(
    api: ApiClient,
    sweep: threading.Thread,
    at: str,
    before: int | None,
    timeout: float,
    poll: float,
    settle: float = LOCAL_SETTLE_SECONDS,
) -> int | None:
    """Show a progress bar until the sweep returns and the report shows nothing due (or time runs out)."""
    count = MofNCompleteColumn() if before is not None else TextColumn("(the report could not say how many)")
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), count]
    deadline = time.monotonic() + timeout
    remaining = before
    with Progress(*columns, TimeElapsedColumn(), console=errors, transient=False) as progress:
        # The total is what the report said was due before the sweep (0 when nothing is); None only when
        # the report could not be read, and then the bar pulses instead of counting.
        task = progress.add_task("retention sweep", total=before)
        changed = time.monotonic()
        wait = poll
        while time.monotonic() < deadline:
            sweep.join(wait)
            asked = time.monotonic()
            previous, remaining = remaining, _report_due(api, at)
            wait = min(MAX_POLL_SECONDS, max(poll, REPORT_PACE * (time.monotonic() - asked)))
            if remaining != previous:
                changed = time.monotonic()
            if before is not None and remaining is not None:
                progress.update(task, completed=max(before - remaining, 0))
            if sweep.is_alive():
                continue
            if remaining in (0, None) or (api.target.is_local and time.monotonic() - changed >= settle):
                break
        if remaining == 0 and before is not None:
            progress.update(task, completed=before)
    return remaining


@retention_app.command("run")
def retention_run(
    wait: Annotated[bool, typer.Option("--wait", help="Follow the sweep to its end with a progress bar.")] = False,
    at: AtOpt = None,
    timeout: Annotated[float, typer.Option(help="Give up waiting after this many seconds.")] = 600.0,
    json_out: JsonOpt = False,
) -> None:
    """Run the retention sweep now (or as if at --at)."""
    event = scheduled_event(parse_at(at))
    try:
        tgt = target()
    except CliError as exc:
        errors.print(render.error_line(exc), soft_wrap=True)
        raise typer.Exit(1) from None
    api = ApiClient(tgt, timeout=timeout)
    if not wait:
        run(lambda: _invoke_sweep(tgt, api, event), as_json=json_out, title="retention sweep")
        return

    outcome: dict[str, Any] = {}

    def sweep() -> None:
        try:
            outcome["result"] = _invoke_sweep(tgt, api, event)
        except CliError as exc:
            outcome["error"] = exc

    before = _report_due(api, event["time"])
    worker = threading.Thread(target=sweep, name="retention-sweep", daemon=True)
    worker.start()
    remaining = _follow(api, worker, event["time"], before, timeout, poll=0.5)
    worker.join(1)
    if "error" in outcome:
        errors.print(render.error_line(outcome["error"]), soft_wrap=True)
        raise typer.Exit(1)
    if worker.is_alive():
        errors.print(render.error_line(f"the sweep did not finish within {timeout:.0f}s"))
        raise typer.Exit(1)
    answer = {"time": event["time"], "due_before": before, "due_after": remaining, "result": outcome.get("result")}
    if json_out or state.json:
        render.show(console, answer, as_json=True)
    else:
        render.show(console, render.sweep_summary(answer), as_json=False, title="retention sweep")


# ---------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify(json_out: JsonOpt = False) -> None:
    """Verify the audit hash chain; exits 1 if it is broken."""
    answer = run(lambda: client().get("/admin/audit/verify"), as_json=json_out, title="audit")
    if isinstance(answer, dict) and answer.get("ok") is False:
        raise typer.Exit(1)


# ---------------------------------------------------------------- backups
@backups_app.command("replay")
def backups_replay(
    dataset: Annotated[str, typer.Option("--dataset", help="The inventory dataset whose table was restored.")],
    table: Annotated[str, typer.Option("--table", help="The restored table's physical name.")],
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the job to finish.")] = True,
    timeout: Annotated[float, typer.Option(help="Give up waiting after this many seconds.")] = 600.0,
    json_out: JsonOpt = False,
) -> None:
    """Replay the erasure ledger onto a restored table, then sweep it for retention as of now."""
    api = client()
    job = _call(lambda: api.post("/admin/backups/replay", {"dataset": dataset, "table": table}))
    path = f"/admin/backups/replay/{job['job_id']}"
    deadline = time.monotonic() + timeout
    while wait and job.get("status") != "done" and time.monotonic() < deadline:
        time.sleep(0.5)
        job = _call(lambda: api.get(path))
    render.show(console, job, as_json=json_out or state.json, title="backup replay")
    if wait and job.get("status") != "done":
        errors.print(f"[red]error:[/red] the replay did not finish within {timeout:.0f}s ({job.get('status')})")
        raise typer.Exit(1)


# ---------------------------------------------------------------- manual tasks and recipients
@tasks_app.command("list")
def tasks_list(json_out: JsonOpt = False) -> None:
    """Manual tasks still open, earliest due first."""
    run(lambda: client().get("/admin/tasks", status="open"), as_json=json_out, title="open manual tasks")


def _items(path: str | None) -> list[Any] | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            items = json.load(handle)
    except (OSError, ValueError) as exc:
        errors.print(render.error_line(f"cannot read items from {path}: {exc}"), soft_wrap=True)
        raise typer.Exit(2) from None
    if not isinstance(items, list):
        errors.print(render.error_line("--items must hold a JSON list of objects"), soft_wrap=True)
        raise typer.Exit(2)
    return items


@tasks_app.command("complete")
def tasks_complete(
    request_id: str,
    dataset: str,
    note: Annotated[str, typer.Option("--note", help="What was done; shown to the subject.")],
    items: Annotated[
        str | None, typer.Option("--items", help="Access: a JSON file holding the list of items found.")
    ] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who did it (default: you, the caller).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Complete a manual dataset's task of a request; the request finalizes once none is left."""
    body: dict[str, Any] = {"note": note}
    found = _items(items)
    if found is not None:
        body["items"] = found
    if by:
        body["done_by"] = by
    path = f"/admin/requests/{quoted(request_id)}/tasks/{quoted(dataset)}/complete"
    run(lambda: client().post(path, body), as_json=json_out, title="manual task")


@recipients_app.command("failed")
def recipients_failed(json_out: JsonOpt = False) -> None:
    """Recipient notices that kept failing, oldest first."""
    run(lambda: client().get("/admin/recipient-notices"), as_json=json_out, title="failed recipient notices")


@recipients_app.command("list")
def recipients_list(request_id: str, json_out: JsonOpt = False) -> None:
    """Every recipient notice of one request: who, how, sent when, or why not yet."""
    run(
        lambda: client().get("/admin/recipient-notices", request_id=request_id),
        as_json=json_out,
        title="recipient notices",
    )


@recipients_app.command("retry")
def recipients_retry(request_id: str, notice_id: str, json_out: JsonOpt = False) -> None:
    """Send a failed recipient notice again (after fixing the recipient's address or webhook)."""
    path = f"/admin/requests/{quoted(request_id)}/recipient-notices/{quoted(notice_id)}/retry"
    run(lambda: client().post(path), as_json=json_out, title="recipient notice")


def _call(action: Any) -> dict[str, Any]:
    """One API call whose answer is shown later; a CliError becomes one red line and exit code 1."""
    try:
        answer: dict[str, Any] = action()
    except CliError as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    return answer


# ---------------------------------------------------------------- the privacy inbox and reports
def _register_inbox_and_reports() -> None:
    from lethe_cli.inbox_reports import inbox_app, reports_app

    app.add_typer(inbox_app, name="inbox")
    app.add_typer(reports_app, name="reports")


_register_inbox_and_reports()

if __name__ == "__main__":
    app()


# ---------------------------------------------------------------- OpenDSR callbacks
@callbacks_app.command("dead-letters")
def callbacks_dead_letters(json_out: JsonOpt = False) -> None:
    """Up to 10 status callbacks in the dead-letter queue (each try is in the request's history too)."""
    run(lambda: client().get("/admin/opendsr/callbacks/dead-letters"), as_json=json_out, title="dead callbacks")


@callbacks_app.command("redrive")
def callbacks_redrive(json_out: JsonOpt = False) -> None:
    """Send dead callbacks again (after the controller's endpoint is fixed), with backoff."""
    run(lambda: client().post("/admin/opendsr/callbacks/redrive"), as_json=json_out)
