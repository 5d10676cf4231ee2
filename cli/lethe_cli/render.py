"""Shows API answers: rich tables for people, plain JSON for scripts.

Everything an answer holds came from the server, and much of it from subjects or operators (details,
names, corrections, reasons, even the keys of a map). It is always shown as plain text: every string
reaches rich as a `Text`, never as markup (`[link=…]` or `[/x]` is printed as written), and control
characters (terminal escapes such as `\\x1b[2J`, carriage returns) and bidirectional overrides are shown
escaped, so they cannot move the cursor, clear the screen or reorder what the operator reads."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

LIST_KEYS = ("items", "requests", "holds", "legal_holds", "results", "datasets", "events", "tasks")
PREFERRED_COLUMNS = (
    "request_id",
    "hold_id",
    "id",
    "dataset",
    "recipient",
    "type",
    "status",
    "regulation",
    "created_at",
    "due_at",
    "reason",
    "action",
    # A recipient notice: how, whether it was sent and when, before its long notice_id.
    "channel",
    "state",
    "told_at",
)
MAX_COLUMNS = 9
CELL_WIDTH = 40  # the room a long value gets in a table; a nested one is cut to one line (whole in --json)
REF_LENGTH = 12  # an HMAC reference shortened in tables: enough to tell rows apart and to search for
# Bidirectional embeddings, overrides and isolates: they reorder how the text around them reads.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
SWEEP_COLUMNS = {"paths": "path", "tasks_per_dataset": "tasks"}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?")


def _escape(char: str) -> str:
    if char == "\n":
        return char
    if char == "\t":
        return " "
    if unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS:
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def printable(value: Any) -> str:
    """The text of a value with control characters and bidi overrides made visible as escapes."""
    return "".join(_escape(char) for char in str(value))


def plain(value: Any, style: str = "") -> Text:
    """A value as rich Text: printed as written, never read as markup."""
    return Text(printable(value), style=style)


def error_line(message: Any) -> Text:
    """`error: <message>` with only the prefix styled."""
    return Text.assemble(("error:", "red"), " ", plain(message))


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


def compact_time(value: str) -> str:
    """2026-12-01T09:38:59.123456Z -> 2026-12-01 09:38 (UTC); anything else unchanged."""
    if not TIMESTAMP.fullmatch(value):
        return value
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%d %H:%M")


def _scalar_list(value: Any) -> bool:
    return isinstance(value, list) and not any(isinstance(item, dict | list) for item in value)


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if _scalar_list(value):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return str(value)


def _cell(value: Any) -> Text:
    return plain(_text_of(value))


def _table_cell(column: str, value: Any) -> Text:
    """A table cell: timestamps to the minute, HMAC references shortened; the full values are in --json."""
    text = _text_of(value)
    if isinstance(value, str):
        text = compact_time(text)
        if column.endswith("_ref") and len(text) > REF_LENGTH:
            text = text[:REF_LENGTH] + "…"
    return plain(text)


def _empty(value: Any) -> bool:
    return value is None or value is False or value == "" or value == [] or value == {}


def _identifier(column: str) -> bool:
    return column == "id" or column.endswith("_id")


def _cell_width(column: str, rows: list[dict[str, Any]]) -> int:
    widest = max([len(column)] + [len(_table_cell(column, row.get(column)).plain) for row in rows])
    return widest if _identifier(column) else min(widest, CELL_WIDTH)


def columns_for(rows: list[dict[str, Any]], width: int | None = None) -> list[str]:
    """The columns worth a place: those with a value in some row, preferred ones first, then plain values
    before lists and maps; with a width, only as many as fit it (the rest are in `show <id>` or --json)."""
    seen: list[str] = []
    for row in rows:
        for key, value in row.items():
            if key not in seen and not _empty(value):
                seen.append(key)
    rest = [c for c in seen if c not in PREFERRED_COLUMNS]
    rest.sort(key=lambda c: any(isinstance(row.get(c), dict | list) for row in rows))
    ordered = ([c for c in PREFERRED_COLUMNS if c in seen] + rest)[:MAX_COLUMNS]
    if width is None:
        return ordered
    chosen, used = [], 1
    for column in ordered:
        need = _cell_width(column, rows) + 3  # padding and a border
        if not chosen or used + need <= width:
            chosen.append(column)
            used += need
    return chosen


def table(rows: list[dict[str, Any]], title: str | None = None, width: int | None = None) -> Table:
    out = Table(title=None if title is None else plain(title), show_lines=False, header_style="bold")
    columns = columns_for(rows, width)
    left_out = len(columns_for(rows)) - len(columns)
    if left_out:
        out.caption = Text(f"{left_out} more column(s) in --json", style="dim")
    for column in columns:
        if any(_nested(row.get(column)) for row in rows):
            out.add_column(plain(column), overflow="ellipsis", no_wrap=True, max_width=CELL_WIDTH)
        else:
            out.add_column(plain(column), overflow="fold", no_wrap=_identifier(column), max_width=None)
    for row in rows:
        out.add_row(*(_table_cell(c, row.get(c)) for c in columns))
    return out


def record(answer: dict[str, Any], title: str | None = None) -> Table:
    """One object as a two-column table (nested lists are shown by `show`)."""
    out = Table(title=None if title is None else plain(title), show_header=False, box=None, pad_edge=False)
    out.add_column("field", style="bold")
    out.add_column("value", overflow="fold")
    for key, value in answer.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            continue
        out.add_row(plain(key), _cell(value))
    return out


def _nested(value: Any) -> bool:
    """A value shown as a table of its own: a map or a list holding objects."""
    return isinstance(value, dict) or (isinstance(value, list) and not _scalar_list(value))


def show(console: Console, answer: Any, *, as_json: bool, title: str | None = None) -> None:
    if as_json:
        # json.dumps escapes every control character, so the JSON is as safe to print as it is to parse.
        console.file.write(json.dumps(answer, default=str, indent=2) + "\n")
        return
    rows = rows_of(answer)
    values = list(answer.values()) if isinstance(answer, dict) else []
    if rows is None and values and all(_empty(v) for v in values) and [] in values:
        console.print(Text("none", style="dim"))  # `{"notices": []}`: an empty listing
        return
    if isinstance(answer, dict) and rows is None:
        console.print(record(answer, title))
        return
    if isinstance(answer, dict):
        scalars = {k: v for k, v in answer.items() if not _empty(v) and not _nested(v)}
        printed = bool(scalars)
        if scalars:
            console.print(record(scalars, title))
            title = None
        for key, value in answer.items():
            if isinstance(value, dict) and value:
                nested = rows_of({key: value}) or rows_of(value) or [value]
                console.print(table(nested, title=key, width=console.width))
                printed = True
            elif _nested(value):
                console.print(table(rows_of(value) or [], title=key if title is None else title, width=console.width))
                printed = True
        if not printed and rows == []:
            # A listing with no entries (`{"requests": []}`) says so rather than printing nothing.
            console.print(Text("none", style="dim"))
        return
    if rows is not None:
        console.print(table(rows, title, width=console.width) if rows else Text("none", style="dim"))
        return
    console.print(_cell(answer))


def sweep_summary(answer: dict[str, Any]) -> dict[str, Any]:
    """A sweep's outcome for people: its scalars, and one row per dataset joining the result's per-dataset
    maps (path, tasks), instead of the raw result as JSON in a cell."""
    result = answer.get("result") if isinstance(answer.get("result"), dict) else {}
    summary = {k: v for k, v in answer.items() if k != "result"}
    summary.update({k: v for k, v in result.items() if not isinstance(v, dict | list)})
    maps = {SWEEP_COLUMNS.get(k, k): v for k, v in result.items() if isinstance(v, dict)}
    names = sorted({name for values in maps.values() for name in values})
    summary["datasets"] = [{"dataset": name, **{k: m.get(name) for k, m in maps.items()}} for name in names]
    return summary
