"""pynamodb's connections (one per model, dataset table and transaction) take their DynamoDB client
from Lethe's one botocore session, and share one: a cold start builds one session, not one per table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.session
import pytest


def test_a_run_that_reads_several_tables_builds_one_botocore_session_and_one_pynamodb_client(
    invoke: Callable[..., Any], sample_event: Callable[[str], dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lethe.aws import transaction_connection
    from lethe.data.models import ALL_MODELS

    # Given models with no connection yet, as at a cold start (an earlier test's are kept on the classes),
    # and a count of the botocore sessions built from here on
    models = [model for group in ALL_MODELS.values() for model in group]
    for model in models:
        monkeypatch.setattr(model, "_connection", None)
    built: list[botocore.session.Session] = []
    original = botocore.session.Session.__init__

    def counted(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "__init__", counted)

    # When the retention planner runs cold: it reads watermarks, the legal holds and Lethe's requests
    # through pynamodb models, and sends its tasks to SQS
    summary = invoke("RetentionFunction", sample_event("retention.json"))
    assert summary["tasks"] > 0

    # Then one session was built (Lethe's), and every pynamodb connection holds the same client
    assert len(built) == 1
    connections = [model._get_connection().connection for model in models]
    clients = {id(connection.client) for connection in [*connections, transaction_connection()]}
    assert len(clients) == 1
    assert len(built) == 1  # asking every connection for its client built no session either
