"""The CLI's rendering of server data: plain text whatever it holds, tables that fit a terminal."""

from __future__ import annotations

import io
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from lethe_cli import render

SUBJECT_REF = "k1:" + "ab" * 32


def shown(answer: Any, width: int = 160, title: str | None = None) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system="truecolor")
    render.show(console, answer, as_json=False, title=title)
    return out.getvalue()


def request_row(n: int) -> dict[str, Any]:
    return {
        "request_id": f"req_{n:022d}",
        "type": "child_data_report",
        "status": "identity_unverified",
        "regulation": "uk-gdpr",
        "created_at": "2026-12-01T09:38:59.123456Z",
        "due_at": "2027-01-01T09:38:59.123456Z",
        "subject_ref": SUBJECT_REF,
        "extended": True,
        "extension_reason": None,
        "denial_reason": None,
        "corrections": None,
        "datasets_pending": [],
        "datasets_done": [],
        "datasets_failed": [],
        "outcome": None,
    }


def test_markup_in_values_keys_and_titles_is_printed_as_written() -> None:
    # Given an answer whose values, keys and nested titles carry rich markup
    answer = {"reason": "[/x] [bold]loud[/bold] [link=https://evil.example]click[/link]", "[/y]": {"[/z]": "v"}}
    # When it is shown (this raised MarkupError before)
    text = shown(answer)
    # Then every tag is printed as written, and no hyperlink escape is emitted
    assert "[/x] [bold]loud[/bold] [link=https://evil.example]click[/link]" in text
    assert "[/y]" in text and "[/z]" in text
    assert "\x1b]8;" not in text


def test_terminal_escapes_and_bidi_overrides_are_made_visible() -> None:
    text = shown({"name": "a\x1b[2Jb\x07c\rd\u202ee\x9bf"}, title="x\x1b[31m")
    assert "a\\x1b[2Jb\\x07c\\x0dd\\u202ee\\x9bf" in text
    assert "x\\x1b[31m" in text
    assert "\x1b[2J" not in text and "\x07" not in text and "\r" not in text and "\u202e" not in text


@given(st.text())
def test_printable_never_lets_a_control_character_through(value: str) -> None:
    result = render.printable(value)
    assert all(c == "\n" or (ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F) for c in result)
    assert not set(result) & render.BIDI_CONTROLS


def test_an_error_line_is_plain_text() -> None:
    out = io.StringIO()
    Console(file=out, width=160).print(render.error_line("404 not_found: no request [/x]\x1b[2J"))
    assert out.getvalue() == "error: 404 not_found: no request [/x]\\x1b[2J\n"


def test_a_page_of_requests_fits_160_columns_one_line_each() -> None:
    # Given a page of requests with the widest values each column can hold
    rows = [request_row(n) for n in range(3)]
    # When it is shown on a 160-column terminal
    text = shown({"requests": rows}, width=160, title="requests")
    lines = text.splitlines()
    # Then each request is one line, with a compact time and a shortened subject ref; empty columns are left out
    for row in rows:
        line = next(line for line in lines if row["request_id"] in line)
        assert "child_data_report" in line and "identity_unverified" in line
        assert "2027-01-01 09:38" in line and SUBJECT_REF[:12] + "…" in line
    assert SUBJECT_REF not in text and "09:38:59" not in text
    assert "denial_reason" not in text and "datasets_done" not in text
    assert len([line for line in lines if "req_" in line]) == len(rows)
    assert max(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in lines) <= 160


def test_a_sweep_outcome_is_a_summary_and_a_row_per_dataset() -> None:
    answer = {
        "time": "2027-06-01T00:00:00Z",
        "due_before": 62,
        "due_after": 0,
        "result": {
            "duration_ms": 288,
            "run_id": "run_1",
            "scan_datasets": ["diagnostics"],
            "paths": {"accounts": "index", "diagnostics": "scan"},
            "tasks": 8,
            "tasks_per_dataset": {"accounts": 4, "diagnostics": 4},
        },
    }
    summary = render.sweep_summary(answer)
    assert summary["datasets"] == [
        {"dataset": "accounts", "path": "index", "tasks": 4},
        {"dataset": "diagnostics", "path": "scan", "tasks": 4},
    ]
    text = shown(summary)
    assert "{" not in text and "run_1" in text and "62" in text


def test_a_narrow_terminal_gets_the_columns_that_fit_and_is_told_the_rest_are_in_json() -> None:
    rows = [{**request_row(n), "outcome": {"datasets": {"accounts": {"action": "delete"}}}} for n in range(2)]
    text = shown({"requests": rows}, width=100, title="requests")
    assert max(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in text.splitlines()) <= 100
    assert all(row["request_id"] in text for row in rows)
    assert "more column(s) in --json" in text
    assert '{"datasets"' not in text


def test_an_empty_listing_says_none() -> None:
    for answer in ({"requests": []}, {"requests": [], "cursor": None}, {"notices": []}):
        assert re.sub(r"\x1b\[[0-9;]*m", "", shown(answer)).strip() == "none"


def test_a_recipient_notice_row_shows_whether_and_when_it_was_sent_at_160_columns() -> None:
    notice = {
        "request_id": "req_XHotehDqxzjxfV1XMR0qCA",
        "notice_id": "accounts.caf-x-communications-limited-uk-subsidia.c9e2e1a0",
        "dataset": "accounts",
        "recipient": "CaféX Communications Limited (UK subsidiary)",
        "channel": "webhook",
        "state": "sent",
        "attempts": 1,
        "told_at": "2026-12-01T17:31:28+00:00",
        "last_error": None,
    }
    header = next(line for line in shown({"notices": [notice]}).splitlines() if "request_id" in line)
    assert [c in header for c in ("channel", "state", "told_at")] == [True, True, True]
