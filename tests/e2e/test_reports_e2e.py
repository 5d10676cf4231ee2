"""Reports on the local stack: the record of processing opens in Chromium (Playwright) with the pages'
security headers, and `lethe reports` prints the metrics and the record."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_form_browser import CHROMIUM, CHROMIUM_ARGS


def lethe(local_stack: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"LETHE_API_URL": local_stack.base_url, "LETHE_ADMIN_TOKEN": local_stack.admin_token, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [str(Path(sys.executable).parent / "lethe"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_record_of_processing_opens_in_chromium(local_stack: Any) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium; install it with `apt-get install chromium`")
    sync_api = pytest.importorskip("playwright.sync_api", reason="install the dev extras: pip install -e '.[dev]'")
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(extra_http_headers={"Authorization": f"Bearer {local_stack.admin_token}"})
            page = context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            response = page.goto(f"{local_stack.base_url}/admin/reports/processing?format=html")
            assert response is not None and response.status == 200
            headers = response.headers
            assert "default-src 'none'" in headers["content-security-policy"]
            assert headers["x-frame-options"] == "DENY"
            assert page.title() == "Record of processing activities"
            assert page.locator("h1").inner_text() == "Record of processing activities"
            rows = page.locator("tbody tr")
            names = [rows.nth(i).locator("th").inner_text() for i in range(rows.count())]
            assert names[0] == "accounts" and names[-2:] == ["lethe", "privacy_inbox"] and "invoices" in names
            invoices = page.locator("tbody tr", has=page.locator("th", has_text="invoices"))
            assert "Tax authorities (on legal request)" in invoices.inner_text()
            assert "P7Y" in invoices.inner_text()
            accounts = page.locator("tbody tr", has=page.locator("th", has_text="accounts"))
            assert "EU-US Data Privacy Framework" in accounts.inner_text()
        finally:
            browser.close()
    assert errors == []


def test_lethe_reports_prints_the_metrics_and_the_record(local_stack: Any) -> None:
    today = datetime.now(UTC).date()
    start = (today - timedelta(days=30)).isoformat()
    as_json = lethe(local_stack, "reports", "metrics", "--from", start, "--to", today.isoformat(), "--json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert [row["type"] for row in report["types"]][:4] == ["access", "portability", "rectification", "erasure"]
    as_csv = lethe(local_stack, "reports", "metrics", "--from", start, "--to", today.isoformat(), "--csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = {row["type"]: row for row in csv.DictReader(io.StringIO(as_csv.stdout))}
    for row in report["types"]:
        assert int(rows[row["type"]]["received"]) == row["received"]
    table = lethe(local_stack, "reports", "metrics", "--from", start, "--to", today.isoformat())
    assert table.returncode == 0 and "erasure" in table.stdout
    bad = lethe(local_stack, "reports", "metrics", "--from", today.isoformat(), "--to", start)
    assert bad.returncode == 1 and "invalid_report_period" in bad.stderr

    record = lethe(local_stack, "reports", "processing", "--json")
    assert record.returncode == 0, record.stderr
    assert [a["dataset"] for a in json.loads(record.stdout)["activities"]][-1] == "privacy_inbox"
    page = lethe(local_stack, "reports", "processing", "--html")
    assert page.returncode == 0 and "<th scope=row>invoices</th>" in page.stdout
