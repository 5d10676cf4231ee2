"""boto3 clients, one per service per process. The endpoint comes from AWS_ENDPOINT_URL (moto locally)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


@cache
def client(service: str) -> Any:
    from lethe.settings import get_settings

    session: Any = boto3.session.Session()  # Any: boto3-stubs types each service's client apart
    return session.client(service, region_name=get_settings().region, config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and credentials between cases)."""
    client.cache_clear()
