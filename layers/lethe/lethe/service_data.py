"""botocore's service data as Lethe's functions load it: the models and endpoint rules of the services
Lethe calls, found without walking every service's folder, and an endpoint table cut to those services.

botocore's endpoint table (endpoints.json, 1.2 MB) names every endpoint of ~400 services in every
partition. Every process's first client parses it and builds a resolver from it, about a third of
what building that client costs. The layer build writes the same table holding only SERVICES
(`python -m lethe.service_data ENDPOINTS_JSON FOLDER`, about 50 kB), and a function's loader reads it first
(LETHE_SERVICE_DATA). Every entry kept is botocore's own, so every endpoint of those services resolves
as it does from the whole table."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader, create_loader

# The services Lethe builds clients of (lethe.aws.client, pynamodb), and STS, which the default credential
# chain calls to assume a role.
SERVICES = frozenset({"dynamodb", "events", "kms", "s3", "secretsmanager", "ses", "sqs", "sts"})
ENDPOINTS = "endpoints.json"


class _KnownServices(Sequence[str]):
    """The services botocore has data of, as Loader.list_available_services answers; asked whether one
    service is among them, it looks for that service's folder alone, and lists them all only when read."""

    def __init__(self, loader: Loader, type_name: str) -> None:
        self._loader, self._type_name = loader, type_name

    def __contains__(self, service: object) -> bool:
        try:
            return isinstance(service, str) and bool(self._loader.list_api_versions(service, self._type_name))
        except DataNotFoundError:
            return False

    def _all(self) -> list[str]:
        return list(Loader.list_available_services(self._loader, self._type_name))

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())


class ServiceData(Loader):
    """botocore's loader of service models and endpoint rules. Before it loads a service's model, botocore
    checks the name against the list of every service it knows, made by walking its ~450 data folders:
    twice a cold start (service models, endpoint rules), about 15 ms. Here the check looks at the named
    service's folder only (_KnownServices); the models loaded are the same."""

    def list_available_services(self, type_name: str) -> Sequence[str]:  # type: ignore[override]  # botocore only reads it
        return _KnownServices(self, type_name)


def loader(folder: Path | None = None) -> ServiceData:
    """The loader of botocore's data, reading `folder` (the layer's cut endpoint table) before it."""
    default = create_loader()
    first = [str(folder)] if folder is not None else []
    return ServiceData(extra_search_paths=[*first, *default.search_paths], include_default_search_paths=False)


def endpoint_prefixes(data: Loader, services: frozenset[str] = SERVICES) -> frozenset[str]:
    """The names `services` go by in the endpoint table: their models' endpoint prefix (SES's is "email")."""
    return frozenset(
        data.load_service_model(service, "service-2")["metadata"]["endpointPrefix"] for service in services
    )


def cut_endpoints(table: dict[str, Any], prefixes: frozenset[str]) -> dict[str, Any]:
    """botocore's endpoint table with, in every partition, only the entries named by `prefixes`."""
    partitions = [
        {**partition, "services": {name: entry for name, entry in partition["services"].items() if name in prefixes}}
        for partition in table["partitions"]
    ]
    return {**table, "partitions": partitions}


def write_endpoints(source: Path, folder: Path) -> Path:
    """Write the cut table of botocore's `source` endpoints.json into `folder`, where a loader finds it.
    The services' endpoint prefixes come from the models beside `source`: the same botocore release."""
    beside = Loader(extra_search_paths=[str(source.parent)], include_default_search_paths=False)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ENDPOINTS
    cut = cut_endpoints(json.loads(source.read_text(encoding="utf-8")), endpoint_prefixes(beside))
    target.write_text(json.dumps(cut, separators=(",", ":"), sort_keys=True), encoding="utf-8")
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m lethe.service_data BOTOCORE_ENDPOINTS_JSON FOLDER", file=sys.stderr)
        return 2
    target = write_endpoints(Path(argv[0]), Path(argv[1]))
    print(f"{target}: endpoints of {len(SERVICES)} services", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover - the layer build's step
    sys.exit(main(sys.argv[1:]))
