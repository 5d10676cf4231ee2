"""The public form in a real browser (Playwright driving Debian's Chromium).

Two targets: a small stand-in API (so the page's own behaviour - every type, corrections, errors announced,
code step, status view - is tested whatever the server side does), and the local stack (the full journey
from the form to a completed access request, with the code read from the outbox)."""

from __future__ import annotations

import email
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lethe.api.form import FORM_HEADERS, FORM_HTML, REGULATIONS, REQUEST_TYPES

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
    """Every console error and uncaught page error, so a test can assert there were none."""

    problems: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("console", lambda message: message.type == "error" and self.problems.append(message.text))
        page.on("pageerror", lambda error: self.problems.append(f"pageerror: {error}"))


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, Console]]:
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    console = Console()
    console.watch(tab)
    yield tab, console
    context.close()


# ---------------------------------------------------------------- a stand-in API for the page's own behaviour
@dataclass
class FakeApi:
    base_url: str
    received: list[dict[str, Any]]
    code: str = "246810"


def _fake_handler(state: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def _send(self, status: int, body: str, content_type: str, headers: dict[str, str] | None = None) -> None:
            raw = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def _json(self, status: int, payload: Any) -> None:
            self._send(status, json.dumps(payload), "application/json")

        def do_GET(self) -> None:
            if self.path == "/":
                self._send(200, FORM_HTML, "text/html; charset=utf-8", FORM_HEADERS)
                return
            match = re.fullmatch(r"/requests/([\w-]+)", self.path)
            if match and match.group(1) in state["requests"]:
                record = state["requests"][match.group(1)]
                record["polls"] += 1
                status = "in_progress" if record["polls"] < 3 else "completed"
                self._json(200, {**record["public"], "status": status})
                return
            self._json(404, {"error": {"code": "not_found", "message": "no such request"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            if self.path == "/requests":
                state["received"].append(body)
                request_id = str(uuid.uuid4())
                public = {
                    "request_id": request_id,
                    "type": body["type"],
                    "status": "identity_unverified",
                    "created_at": "2026-11-22T10:00:00Z",
                    "due_at": "2026-12-22T10:00:00Z",
                }
                state["requests"][request_id] = {"public": public, "polls": 0}
                self._json(202, {k: public[k] for k in ("request_id", "status", "due_at")})
                return
            match = re.fullmatch(r"/requests/([\w-]+)/verify", self.path)
            if match and match.group(1) in state["requests"]:
                if body.get("code") == state["code"]:
                    self._json(200, {"request_id": match.group(1), "status": "pending"})
                else:
                    self._json(400, {"error": {"code": "verification_failed", "message": "the code is not right"}})
                return
            self._json(404, {"error": {"code": "not_found", "message": "no such route"}})

    return Handler


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    state: dict[str, Any] = {"received": [], "requests": {}, "code": "246810"}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _fake_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FakeApi(base_url=f"http://127.0.0.1:{server.server_address[1]}", received=state["received"])
    finally:
        server.shutdown()
        server.server_close()


def test_form_offers_every_type_and_regulation_with_labels(page: tuple[Any, Console], fake_api: FakeApi) -> None:
    tab, console = page
    # When the form opens
    tab.goto(f"{fake_api.base_url}/")
    # Then every request type is a labelled radio with a description, and every regulation is offered
    for request_type in REQUEST_TYPES:
        radio = tab.locator(f'input[name="type"][value="{request_type}"]')
        assert radio.count() == 1
        assert tab.locator(f'label[for="{radio.get_attribute("id")}"]').inner_text().strip()
        assert tab.locator(f"#{radio.get_attribute('aria-describedby')}").inner_text().strip()
    options = tab.locator("#regulation option").evaluate_all("els => els.map(e => e.value)")
    assert sorted(options) == sorted(REGULATIONS)
    assert tab.locator("#regulation").input_value() == "other"
    assert tab.get_by_label("Email address").count() == 1
    assert tab.locator('[aria-live="polite"]').count() >= 1
    assert console.problems == []


def test_corrections_appear_only_for_rectification(page: tuple[Any, Console], fake_api: FakeApi) -> None:
    tab, console = page
    tab.goto(f"{fake_api.base_url}/")
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


def test_rectification_posts_corrections_as_a_map(page: tuple[Any, Console], fake_api: FakeApi) -> None:
    tab, console = page
    tab.goto(f"{fake_api.base_url}/")
    tab.locator("#type-rectification").check()
    tab.locator("#cfield-1").fill("name")
    tab.locator("#cvalue-1").fill("Ada King")
    tab.get_by_label("Email address").fill("rect-form@example.com")
    tab.get_by_label("Where do you live?").select_option("gdpr")
    tab.get_by_role("button", name="Send request").click()
    tab.locator("#step-verify").wait_for(state="visible")
    assert fake_api.received[-1] == {
        "type": "rectification",
        "email": "rect-form@example.com",
        "regulation": "gdpr",
        "corrections": {"name": "Ada King"},
    }
    assert console.problems == []


def test_errors_are_announced_and_marked(page: tuple[Any, Console], fake_api: FakeApi) -> None:
    tab, console = page
    tab.goto(f"{fake_api.base_url}/")
    # When the form is sent without an email address
    tab.get_by_role("button", name="Send request").click()
    # Then the error is in an alert region, the field is marked invalid and has focus, and nothing was sent
    alert = tab.locator("#request-errors")
    assert alert.get_attribute("role") == "alert"
    assert "Enter your email address" in alert.inner_text()
    assert tab.locator("#email").get_attribute("aria-invalid") == "true"
    expect(tab.locator("#email")).to_be_focused()
    expect(tab.locator("#announcer")).to_contain_text("problem")
    assert fake_api.received == []
    assert console.problems == []


def test_code_step_and_status_view_with_stand_in_api(page: tuple[Any, Console], fake_api: FakeApi) -> None:
    tab, console = page
    tab.goto(f"{fake_api.base_url}/")
    tab.get_by_label("Email address").fill("flow-form@example.com")
    tab.get_by_role("button", name="Send request").click()
    tab.locator("#step-verify").wait_for(state="visible")
    # When a wrong code is entered, it is refused in an alert; then the right one passes
    tab.get_by_label("6-digit code").fill("000000")
    tab.get_by_role("button", name="Confirm").click()
    expect(tab.locator("#verify-errors")).to_contain_text("not right")
    tab.get_by_label("6-digit code").fill(fake_api.code)
    tab.get_by_role("button", name="Confirm").click()
    # Then the status view says what happens next and by when, and follows the request to completion
    tab.locator("#step-status").wait_for(state="visible")
    expect(tab.locator("#status-badge")).to_have_attribute("data-status", "completed")
    assert "download your data" in tab.locator("#status-text").inner_text()
    assert "2026" in tab.locator("#status-due").inner_text()
    # A 400 from the wrong code is the one expected console line (the browser logs failed fetches)
    assert [p for p in console.problems if "status of 400" not in p] == []


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


def test_access_request_from_form_to_completed(page: tuple[Any, Console], request: pytest.FixtureRequest) -> None:
    stack = request.getfixturevalue("local_stack")
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
    assert tab.locator("#status-due").inner_text().strip()
    assert tab.locator("#status-type").inner_text().strip() == "A copy of your data"
    expect(tab.locator("#status-badge")).to_have_attribute("data-status", "completed", timeout=COMPLETION_TIMEOUT_MS)
    assert "download your data" in tab.locator("#status-text").inner_text()
    assert console.problems == []
