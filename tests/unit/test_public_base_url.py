"""Links point at the PublicBaseUrl, or without one at the API's own invoke URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lethe.settings import adopt_invoke_url, get_settings


def api_event(domain: str, api_id: str = "a1b2c3d4e5", stage: str = "prod") -> dict[str, object]:
    return {"requestContext": {"domainName": domain, "apiId": api_id, "stage": stage}}


@pytest.fixture
def in_lambda(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "lethe-PublicApiFunction-x1")
    # set, then removed: monkeypatch then restores the variable as it was, whatever the code sets
    monkeypatch.setenv("LETHE_PUBLIC_BASE_URL", "unset")
    monkeypatch.delenv("LETHE_PUBLIC_BASE_URL")
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_without_a_public_base_url_links_use_the_invoke_url(in_lambda: pytest.MonkeyPatch) -> None:
    # Given an API function in Lambda deployed without PublicBaseUrl
    # When the first event arrives through the execute-api endpoint
    adopt_invoke_url(api_event("a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"))

    # Then links point at that API and stage
    assert get_settings().public_base_url == "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod"


def test_a_public_base_url_given_by_the_template_wins(in_lambda: pytest.MonkeyPatch) -> None:
    in_lambda.setenv("LETHE_PUBLIC_BASE_URL", "https://privacy.example.com")

    adopt_invoke_url(api_event("a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"))

    assert get_settings().public_base_url == "https://privacy.example.com"


def test_a_custom_domain_is_not_guessed_from_the_event(in_lambda: pytest.MonkeyPatch) -> None:
    # A custom domain's base path is not the stage, so only PublicBaseUrl can say where links go
    adopt_invoke_url(api_event("privacy.example.com"))

    assert get_settings().public_base_url == "http://127.0.0.1:3000"


def test_outside_lambda_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("LETHE_PUBLIC_BASE_URL", raising=False)
    get_settings.cache_clear()

    adopt_invoke_url(api_event("a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"))

    assert get_settings().public_base_url == "http://127.0.0.1:3000"
