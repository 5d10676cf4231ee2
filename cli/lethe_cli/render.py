"""Shows API answers: rich tables for people, plain JSON for scripts."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

LIST_KEYS = ("items", "requests", "holds", "legal_holds", "results", "datasets", "events")
PREFERRED_COLUMNS = (
    "request_id",
    "hold_id",
    "id",
    "dataset",
    "type",
    "status",
    "regulation",
    "created_at",
    "due_at",
    "reason",
    "action",
)
MAX_COLUMNS = 9


def rows_of(answer: Any) -> list[dict[str, Any]] | None:
    """The list of records in an answer: the answer itself, or its first list-of-objects member."""
    if isinstance(answer, list):
        return [r if isinstance(r, dict) else {"value": r} for r in answer]
    if isinstance(answer, dict):
        for key in LIST_KEYS:
            if isinstance(answer.get(key), list):
                return rows_of(answer[key])
            if isinstance(answer.get(key), dict) and all(isinstance(v, dict) for v in answer[key].values()):
                # A map of name -> record (the retention report's datasets): one row per name.
                return [{"dataset": name, **row} for name, row in answer[key].items()]
        for value in answer.values():
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                return rows_of(value)
    return None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def columns_for(rows: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for row in rows:
        for key in row:
            if key not in seen:
                seen.append(key)
    ordered = [c for c in PREFERRED_COLUMNS if c in seen] + [c for c in seen if c not in PREFERRED_COLUMNS]
    return ordered[:MAX_COLUMNS]


def table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    out = Table(title=title, show_lines=False, header_style="bold")
    columns = columns_for(rows)
    for column in columns:
        identifier = column == "id" or column.endswith("_id")
        out.add_column(column, overflow="fold", no_wrap=identifier)
    for row in rows:
        out.add_row(*(_cell(row.get(c)) for c in columns))
    return out


def record(answer: dict[str, Any], title: str | None = None) -> Table:
    """One object as a two-column table (nested lists are shown by `show`)."""
    out = Table(title=title, show_header=False, box=None, pad_edge=False)
    out.add_column("field", style="bold")
    out.add_column("value", overflow="fold")
    for key, value in answer.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            continue
        out.add_row(key, _cell(value))
    return out


def show(console: Console, answer: Any, *, as_json: bool, title: str | None = None) -> None:
    if as_json:
        console.file.write(json.dumps(answer, default=str, indent=2) + "\n")
        return
    rows = rows_of(answer)
    if isinstance(answer, dict) and rows is None:
        console.print(record(answer, title))
        return
    if isinstance(answer, dict):
        scalars = {k: v for k, v in answer.items() if v is not None and not isinstance(v, list | dict)}
        if scalars:
            console.print(record(scalars, title))
            title = None
        for key, value in answer.items():
            if isinstance(value, dict):
                nested = rows_of({key: value}) or [value]
                console.print(table(nested, title=key))
            elif isinstance(value, list):
                nested = rows_of(value) or []
                if nested:
                    console.print(table(nested, title=key if title is None else title))
                else:
                    console.print(f"[dim]{key}: none[/dim]")
        return
    if rows is not None:
        console.print(table(rows, title) if rows else "[dim]none[/dim]")
        return
    console.print(_cell(answer))
