"""Lethe's botocore loader (lethe.aws._ServiceData): a client is built without walking every service's
data folder, from the same models, and an unknown service is still refused by name."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader, create_loader

from lethe.aws import _ServiceData


def _session(loader: Loader) -> Any:
    session = botocore.session.Session()
    session.register_component("data_loader", loader)
    session.set_credentials("testing", "testing")
    return session


def test_a_client_is_built_without_listing_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a spy on botocore's listing of every service it has data of
    listed: list[str] = []
    real = Loader.list_available_services

    def spy(self: Loader, type_name: str) -> list[str]:
        listed.append(type_name)
        return real(self, type_name)

    monkeypatch.setattr(Loader, "list_available_services", spy)
    loader = _ServiceData(extra_search_paths=create_loader().search_paths, include_default_search_paths=False)

    # When a DynamoDB client is built from it
    client = _session(loader).create_client("dynamodb", region_name="us-east-1")

    # Then nothing was listed, and the client has the model botocore's own loader gives
    assert listed == []
    assert client.meta.service_model.service_name == "dynamodb"
    assert loader.load_service_model("dynamodb", "service-2") == create_loader().load_service_model(
        "dynamodb", "service-2"
    )


def test_the_known_services_are_botocores_when_read_whole() -> None:
    loader = _ServiceData(extra_search_paths=create_loader().search_paths, include_default_search_paths=False)
    known = loader.list_available_services("service-2")
    assert "dynamodb" in known
    assert "sqs" in known
    assert "no-such-service" not in known
    assert 42 not in known
    assert list(known) == create_loader().list_available_services("service-2")
    assert len(known) == len(list(known))


def test_an_unknown_service_is_refused_naming_the_valid_ones() -> None:
    loader = _ServiceData(extra_search_paths=create_loader().search_paths, include_default_search_paths=False)
    with pytest.raises(UnknownServiceError) as refused:
        _session(loader).create_client("no-such-service", region_name="us-east-1")
    assert "no-such-service" in str(refused.value)
    assert "dynamodb" in str(refused.value)
