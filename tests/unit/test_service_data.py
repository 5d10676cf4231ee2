"""Lethe's botocore data (lethe.service_data): a client is built without walking every service's data
folder, from the same models, and an unknown service is still refused by name; the layer's endpoint
table, cut to the services Lethe calls, resolves every endpoint of those services as the whole table does,
and a client of any other service is refused."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from botocore.exceptions import BotoCoreError, UnknownServiceError
from botocore.loaders import Loader, create_loader
from botocore.regions import EndpointResolver

from lethe import aws, service_data
from lethe.service_data import ServiceData as _ServiceData

PACKAGE = Path(aws.__file__).parent


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


BOTOCORE_ENDPOINTS = Path(botocore.__file__).parent / "data" / "endpoints.json"


def _resolve(resolver: EndpointResolver, service: str, region: str, fips: bool, dualstack: bool) -> Any:
    """The endpoint a resolver gives, or the refusal it raises (a variant a region does not offer)."""
    try:
        return resolver.construct_endpoint(service, region, use_fips_endpoint=fips, use_dualstack_endpoint=dualstack)
    except BotoCoreError as refused:
        return f"{type(refused).__name__}: {refused}"


def test_the_cut_table_resolves_every_endpoint_of_lethes_services_as_the_whole_table(tmp_path: Path) -> None:
    # Given botocore's endpoint table and the layer's cut of it
    written = service_data.write_endpoints(BOTOCORE_ENDPOINTS, tmp_path / "layer")
    whole, cut = json.loads(BOTOCORE_ENDPOINTS.read_text()), json.loads(written.read_text())
    full, small = EndpointResolver(whole), EndpointResolver(cut)
    regions = [region for partition in whole["partitions"] for region in partition["regions"]]
    regions += ["xx-unlisted-1", "aws-global"]  # a region not yet listed resolves by its partition's pattern

    # When every service Lethe calls is resolved in every region, with FIPS and dual-stack too, by the name
    # botocore resolves it by (its endpoint prefix: SES is "email")
    prefixes = service_data.endpoint_prefixes(create_loader())
    assert "email" in prefixes
    compared = 0
    for service in sorted(prefixes):
        for region in regions:
            for fips, dualstack in ((False, False), (True, False), (False, True)):
                variant = (service, region, fips, dualstack)
                assert _resolve(small, *variant) == _resolve(full, *variant), variant
                compared += 1

    # Then each answer was the whole table's, and the cut holds those services alone, under a quarter of it
    assert compared >= len(service_data.SERVICES) * 30 * 3
    assert {name for partition in cut["partitions"] for name in partition["services"]} == prefixes
    assert len(json.dumps(cut)) * 4 < len(json.dumps(whole))


def test_a_client_built_from_the_cut_table_calls_the_same_endpoint(tmp_path: Path) -> None:
    # Given a loader that reads the layer's cut table first, and botocore's own
    written = service_data.write_endpoints(BOTOCORE_ENDPOINTS, tmp_path / "layer")
    layer, default = service_data.loader(written.parent), create_loader()
    assert layer.load_data("endpoints") != default.load_data("endpoints")

    # When clients of each service are built from each, in partitions of their own
    for region in ("us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1"):
        for service in sorted(service_data.SERVICES):
            ours = _session(layer).create_client(service, region_name=region)
            theirs = _session(default).create_client(service, region_name=region)

            # Then they call the same URL, signed for the same region
            assert ours.meta.endpoint_url == theirs.meta.endpoint_url, (service, region)
            assert ours.meta.region_name == theirs.meta.region_name, (service, region)


def test_a_client_of_a_service_outside_the_cut_table_is_refused() -> None:
    with pytest.raises(ValueError, match="'lambda'"):
        aws.client("lambda")


def test_every_client_lethe_builds_is_of_a_service_in_the_cut_table() -> None:
    # Every `client("...")` in the package names its service as a literal, so the source says them all.
    named = {
        call.args[0].value
        for module in PACKAGE.rglob("*.py")
        for call in ast.walk(ast.parse(module.read_text(encoding="utf-8")))
        if isinstance(call, ast.Call)
        and getattr(call.func, "attr", getattr(call.func, "id", None)) == "client"
        and call.args
        and isinstance(call.args[0], ast.Constant)
    }
    assert named, "no client found: the scan is broken"
    used = named | {"dynamodb"}  # and pynamodb's client
    assert used <= service_data.SERVICES, used - service_data.SERVICES
