"""The public form in a real browser (Playwright driving Debian's Chromium) against the real local stack:
every type and regulation offered, corrections, errors announced (the page's own and the API's), the code
step with the code read from the outbox, and the status view followed to completion. The same journey runs
with the stack served under the stage prefix /prod/, as on an execute-api URL, where every path the form
and Swagger use must keep the stage."""

from __future__ import annotations

import email
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from pathlib import Path
from typing import Any

import pytest
import requests

from lethe.api.form import REGULATIONS, REQUEST_TYPES
from tests.e2e.conftest import LocalStack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
COMPLETION_TIMEOUT_MS = 60_000


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium; install it with `apt-get install chromium`")
    sync_api = pytest.importorskip("playwright.sync_api", reason="install the dev extras: pip install -e '.[dev]'")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@dataclass
class Console:
    """Every console error and uncaught page error, so a test can assert there were none; and every call
    the page made, as "METHOD URL"."""

    problems: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))
        page.on("request", lambda request: self.calls.append(f"{request.method} {request.url}"))

    def _console(self, message: Any) -> None:
        # The browser asks for /favicon.ico at the origin by itself (Swagger UI's page names none): not a page call.
        if message.type == "error" and not str(message.location.get("url", "")).endswith("/favicon.ico"):
            self.problems.append(message.text)

    def unexpected(self, *statuses: int) -> list[str]:
        """Problems other than the browser's line for an expected failed fetch (e.g. a refused code)."""
        return [p for p in self.problems if not any(f"status of {status}" in p for status in statuses)]


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, Console]]:
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    console = Console()
    console.watch(tab)
    yield tab, console
    context.close()


# ---------------------------------------------------------------- the local stack
def _codes_in(outbox: Path, recipient: str, seen: set[Path]) -> list[tuple[float, Path, str]]:
    found = []
    for path in outbox.glob("*.eml"):
        if path in seen:
            continue
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if recipient not in str(message.get("To", "")):
            continue
        body = message.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""
        match = re.search(r"code is (\d{6})", text) or re.search(r"\b(\d{6})\b", text)
        if match:
            found.append((path.stat().st_mtime, path, match.group(1)))
    return sorted(found)


def newest_code(outbox: Path, recipient: str, seen: set[Path], timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _codes_in(outbox, recipient, seen) if outbox.exists() else []
        if found:
            return found[-1][2]
        time.sleep(0.25)
    raise AssertionError(f"no email with a 6-digit code for {recipient} reached {outbox}")


def unique_address(tag: str) -> str:
    return f"form-{tag}-{uuid.uuid4().hex[:10]}@example.com"


def outbox_files(stack: LocalStack) -> set[Path]:
    return set(stack.outbox.glob("*.eml")) if stack.outbox.exists() else set()


def admin_get(stack: LocalStack, path: str) -> Any:
    response = requests.get(
        f"{stack.base_url}{path}", headers={"Authorization": f"Bearer {stack.admin_token}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_form_offers_every_type_and_regulation_the_api_accepts(
    page: tuple[Any, Console], local_stack: LocalStack
) -> None:
    tab, console = page
    accepted = set(requests.get(f"{local_stack.base_url}/discovery", timeout=30).json()["supported_regulations"])
    # When the form opens
    tab.goto(f"{local_stack.base_url}/")
    # Then every request type is a labelled radio with a description
    for request_type in REQUEST_TYPES:
        radio = tab.locator(f'input[name="type"][value="{request_type}"]')
        assert radio.count() == 1
        assert tab.locator(f'label[for="{radio.get_attribute("id")}"]').inner_text().strip()
        assert tab.locator(f"#{radio.get_attribute('aria-describedby')}").inner_text().strip()
    # And every regulation offered is one the API accepts; the preselected choice names none
    options = tab.locator("#regulation option").evaluate_all("els => els.map(e => e.value)")
    assert sorted(options) == sorted(REGULATIONS)
    assert {o for o in options if o} <= accepted
    assert tab.locator("#regulation").input_value() == ""
    assert tab.get_by_label("Email address").count() == 1
    assert tab.locator('[aria-live="polite"]').count() >= 1
    assert console.problems == []


def test_corrections_appear_only_for_rectification(page: tuple[Any, Console], local_stack: LocalStack) -> None:
    tab, console = page
    tab.goto(f"{local_stack.base_url}/")
    assert tab.locator("#corrections").is_hidden()
    # When rectification is chosen with the keyboard
    tab.locator("#type-rectification").focus()
    tab.keyboard.press("Space")
    # Then the correction rows appear, and more can be added
    assert tab.locator("#corrections").is_visible()
    tab.get_by_role("button", name="Add another correction").click()
    assert tab.locator("#correction-rows .row").count() == 2
    # And they go away for another type
    tab.locator("#type-erasure").check()
    assert tab.locator("#corrections").is_hidden()
    assert console.problems == []


def test_rectification_reaches_the_operator_with_its_corrections(
    page: tuple[Any, Console], local_stack: LocalStack
) -> None:
    tab, console = page
    address = unique_address("rect")
    seen = outbox_files(local_stack)
    # Given a rectification filled in the form
    tab.goto(f"{local_stack.base_url}/")
    tab.locator("#type-rectification").check()
    tab.locator("#cfield-1").fill("name")
    tab.locator("#cvalue-1").fill("Ada King")
    tab.get_by_label("Email address").fill(address)
    tab.get_by_label("Where do you live?").select_option("gdpr")
    tab.get_by_role("button", name="Send request").click()
    # When the emailed code is entered
    tab.locator("#step-verify").wait_for(state="visible")
    tab.get_by_label("6-digit code").fill(newest_code(local_stack.outbox, address, seen))
    tab.get_by_role("button", name="Confirm").click()
    # Then the request waits for review, and the operator sees the corrections and regulation as sent
    tab.locator("#step-status").wait_for(state="visible")
    expect(tab.locator("#status-badge")).to_have_attribute("data-status", "awaiting_approval")
    request_id = tab.locator("#status-id").inner_text().strip()
    shown = admin_get(local_stack, f"/admin/requests/{request_id}")
    assert shown["type"] == "rectification"
    assert shown["regulation"] == "gdpr"
    assert shown["corrections"] == {"name": "Ada King"}
    assert console.problems == []


def test_errors_are_announced_and_marked(page: tuple[Any, Console], local_stack: LocalStack) -> None:
    tab, console = page
    tab.goto(f"{local_stack.base_url}/")
    # When the form is sent without an email address
    tab.get_by_role("button", name="Send request").click()
    # Then the error is in an alert region, the field is marked invalid and has focus, and nothing was sent
    alert = tab.locator("#request-errors")
    assert alert.get_attribute("role") == "alert"
    assert "Enter your email address" in alert.inner_text()
    assert tab.locator("#email").get_attribute("aria-invalid") == "true"
    expect(tab.locator("#email")).to_be_focused()
    expect(tab.locator("#announcer")).to_contain_text("problem")
    assert [c for c in console.calls if c.startswith("POST")] == []
    assert console.problems == []


def test_an_address_the_api_refuses_is_announced(page: tuple[Any, Console], local_stack: LocalStack) -> None:
    tab, console = page
    tab.goto(f"{local_stack.base_url}/")
    # When an address passes the page's own check but not the API's (a one-letter top-level domain)
    tab.get_by_label("Email address").fill("someone@example.c")
    tab.get_by_role("button", name="Send request").click()
    # Then the API's 422 is shown in the alert region and announced, and the form stays
    expect(tab.locator("#request-errors")).to_contain_text("email")
    expect(tab.locator("#announcer")).to_contain_text("not sent")
    assert tab.locator("#step-request").is_visible()
    assert console.unexpected(422) == []


def test_defaults_file_a_request_and_follow_it_to_completion(
    page: tuple[Any, Console], local_stack: LocalStack
) -> None:
    tab, console = page
    address = unique_address("defaults")
    seen = outbox_files(local_stack)
    # Given the form with every default left as it is (access, "Somewhere else, or not sure")
    tab.goto(f"{local_stack.base_url}/")
    tab.get_by_label("Email address").fill(address)
    tab.get_by_role("button", name="Send request").click()
    # Then the request is filed and the code step shows
    tab.locator("#step-verify").wait_for(state="visible")
    assert tab.locator("#verify-email").inner_text() == address
    # When a wrong code is entered, it is refused in an alert; then the emailed one passes
    code = newest_code(local_stack.outbox, address, seen)
    tab.get_by_label("6-digit code").fill("000000" if code != "000000" else "111111")
    tab.get_by_role("button", name="Confirm").click()
    expect(tab.locator("#verify-errors")).to_contain_text("not correct")
    tab.get_by_label("6-digit code").fill(code)
    tab.get_by_role("button", name="Confirm").click()
    # Then the status view says what happens next and by when, and follows the request to completion
    tab.locator("#step-status").wait_for(state="visible")
    expect(tab.locator("#status-due")).to_have_text(re.compile(r"\S"))  # filled by the first status read
    assert tab.locator("#status-type").inner_text().strip() == "A copy of your data"
    expect(tab.locator("#status-badge")).to_have_attribute("data-status", "completed", timeout=COMPLETION_TIMEOUT_MS)
    assert "download your data" in tab.locator("#status-text").inner_text()
    # And the request was made under the default rule
    request_id = tab.locator("#status-id").inner_text().strip()
    assert admin_get(local_stack, f"/admin/requests/{request_id}")["regulation"] == "default"
    assert console.unexpected(400) == []


def test_access_request_from_form_to_completed(page: tuple[Any, Console], local_stack: LocalStack) -> None:
    stack = local_stack
    tab, console = page
    recipient = "ada@example.com"
    seen = set(stack.outbox.glob("*.eml")) if stack.outbox.exists() else set()

    # Given the form, filled for an access request
    tab.goto(f"{stack.base_url}/")
    tab.locator("#type-access").check()
    tab.get_by_label("Email address").fill(recipient)
    tab.get_by_label("Your name (optional)").fill("Ada Lovelace")
    tab.get_by_label("Where do you live?").select_option("gdpr")
    tab.get_by_role("button", name="Send request").click()

    # When the emailed code is entered on the same page
    tab.locator("#step-verify").wait_for(state="visible")
    code = newest_code(stack.outbox, recipient, seen)
    tab.get_by_label("6-digit code").fill(code)
    tab.get_by_role("button", name="Confirm").click()

    # Then the status page shows the request and its deadline, and moves to completed
    tab.locator("#step-status").wait_for(state="visible")
    expect(tab.locator("#status-badge")).to_have_attribute("data-status", re.compile(r"\w+"))
    expect(tab.locator("#status-due")).to_have_text(re.compile(r"\S"))  # filled by the first status read
    assert tab.locator("#status-type").inner_text().strip() == "A copy of your data"
    expect(tab.locator("#status-badge")).to_have_attribute("data-status", "completed", timeout=COMPLETION_TIMEOUT_MS)
    assert "download your data" in tab.locator("#status-text").inner_text()
    assert console.problems == []


# ---------------------------------------------------------------- under a stage prefix
def test_under_a_stage_the_form_files_a_request_and_keeps_the_stage(
    page: tuple[Any, Console], staged_stack: LocalStack
) -> None:
    tab, console = page
    stack = staged_stack
    origin = stack.base_url.removesuffix("/prod")
    address = unique_address("stage")
    seen = outbox_files(stack)
    # Given the form opened at the stage's URL as API Gateway gives it (no trailing slash), defaults kept
    tab.goto(stack.base_url)
    tab.get_by_label("Email address").fill(address)
    tab.get_by_role("button", name="Send request").click()
    # Then the request is filed under the stage and the code step shows
    tab.locator("#step-verify").wait_for(state="visible")
    tab.get_by_label("6-digit code").fill(newest_code(stack.outbox, address, seen))
    tab.get_by_role("button", name="Confirm").click()
    tab.locator("#step-status").wait_for(state="visible")
    expect(tab.locator("#status-badge")).to_have_attribute("data-status", "completed", timeout=COMPLETION_TIMEOUT_MS)
    # And every call the page made kept the stage
    api_calls = [c for c in console.calls if c.split(" ", 1)[0] in {"GET", "POST"} and "/requests" in c]
    assert api_calls and all(c.split(" ", 1)[1].startswith(f"{origin}/prod/requests") for c in api_calls)
    assert tab.locator("footer a").get_attribute("href") == "/prod/discovery"
    assert console.problems == []


def test_under_a_stage_swagger_tries_calls_under_the_stage(page: tuple[Any, Console], staged_stack: LocalStack) -> None:
    tab, console = page
    # Given Swagger UI at the stage's URL
    tab.goto(f"{staged_stack.base_url}/swagger")
    # When "Try it out" runs GET /discovery
    operation = tab.locator("#operations-discovery-discovery_discovery_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    # Then the call went to /prod/discovery and answered 200
    expect(operation.locator(".request-url")).to_contain_text(f"{staged_stack.base_url}/discovery")
    expect(operation.locator(".live-responses-table tbody .response-col_status").first).to_contain_text("200")
    # And the spec served at /prod/openapi.json names the stage as its server
    spec = requests.get(f"{staged_stack.base_url}/openapi.json", timeout=30).json()
    assert spec["servers"] == [{"url": "/prod"}]
    assert console.problems == []


def test_without_a_stage_swagger_and_the_spec_name_the_root(local_stack: LocalStack) -> None:
    # The local stack without a stage is reached as behind a custom domain: no /local prefix anywhere
    spec = requests.get(f"{local_stack.base_url}/openapi.json", timeout=30).json()
    assert spec["servers"] == [{"url": "/"}]
    swagger = requests.get(f"{local_stack.base_url}/swagger", params={"format": "json"}, timeout=30).json()
    assert swagger["servers"] == [{"url": "/"}]
