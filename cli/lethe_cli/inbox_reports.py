"""`lethe inbox …` and `lethe reports …`: the privacy inbox and the regulators' reports.

Registered by lethe_cli.main; the calls go through its target (the local stack, or --stack)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from lethe.domain import RequestType

inbox_app = typer.Typer(help="The privacy inbox: mail to the privacy address that waits for the operator.")
reports_app = typer.Typer(help="Reports for regulators: CCPA metrics and the GDPR Art. 30 record of processing.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer, for scripts.")]


def _main() -> Any:
    from lethe_cli import main

    return main


@inbox_app.command("list")
def inbox_list(
    status: Annotated[str | None, typer.Option(help="open or filed (default: both).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Messages to the privacy address that Lethe could not read as one request, newest first."""
    cli = _main()

    def fetch() -> Any:
        api = cli.client()
        page = api.get("/admin/inbox", status=status)
        items = list(page.get("items") or [])
        while page.get("next_cursor"):
            page = api.get("/admin/inbox", status=status, cursor=page["next_cursor"])
            items.extend(page.get("items") or [])
        return {"items": items}

    cli.run(fetch, as_json=json_out, title="privacy inbox")


@inbox_app.command("file")
def inbox_file(
    item_id: str,
    type_: Annotated[RequestType, typer.Option("--type", help="What the message asks for.")],
    correction: Annotated[list[str] | None, typer.Option(help="field=value, for a rectification (repeatable).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """File an inbox message as a request for its sender; the sender is emailed the verification code."""
    cli = _main()
    body: dict[str, Any] = {"type": type_.value}
    if correction:
        pairs = [c.partition("=") for c in correction]
        if any(not sep or not name for name, sep, _ in pairs):
            cli.errors.print("[red]error:[/red] --correction takes field=value")
            raise typer.Exit(2)
        body["corrections"] = {name: value for name, _, value in pairs}
    cli.run(lambda: cli.client().post(f"/admin/inbox/{cli.quoted(item_id)}/file", body), as_json=json_out)


@reports_app.command("metrics")
def reports_metrics(
    from_: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")],
    to: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (UTC), included.")],
    csv: Annotated[bool, typer.Option("--csv", help="Print the CSV the API gives.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Per request type: received, completed in whole, in part, denied, median and mean days to respond
    (CCPA § 7102), computed from the audit."""
    cli = _main()
    if csv:
        answer = cli._call(
            lambda: cli.client().get("/admin/reports/metrics", **{"from": from_, "to": to, "format": "csv"})
        )
        sys.stdout.write(str(answer.get("body", "")))
        return
    cli.run(
        lambda: cli.client().get("/admin/reports/metrics", **{"from": from_, "to": to}),
        as_json=json_out,
        title="request metrics",
    )


@reports_app.command("processing")
def reports_processing(
    html: Annotated[bool, typer.Option("--html", help="Print the HTML page the API gives.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """The record of processing activities (GDPR Art. 30), from the inventory."""
    cli = _main()
    if html:
        answer = cli._call(lambda: cli.client().get("/admin/reports/processing", format="html"))
        sys.stdout.write(str(answer.get("body", "")))
        return
    cli.run(lambda: cli.client().get("/admin/reports/processing"), as_json=json_out, title="record of processing")
