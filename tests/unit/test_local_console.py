"""The local stack's console condenses structured log lines and metric blobs."""

from __future__ import annotations

import io
import json

from lethe_local.console import CondensingStream, condense


def test_a_powertools_log_line_becomes_one_short_line() -> None:
    line = json.dumps(
        {
            "level": "INFO",
            "location": "handler:12",
            "message": "retention task done",
            "timestamp": "2026-11-21 23:50:00,000+0000",
            "service": "lethe",
            "function_name": "RetentionWorkerFunction",
            "function_request_id": "r-console-1",
            "dataset": "feedback",
            "counts": {"deleted": 2, "anonymized": 0},
        }
    )

    out = condense(line)

    assert out is not None
    assert "RetentionWorkerFunction" in out
    assert "retention task done" in out
    assert "dataset=feedback" in out
    assert '"deleted": 2' in out
    assert "anonymized" not in out
    assert "r-console-1" not in out


def test_a_metrics_blob_of_zeros_is_dropped_and_others_keep_their_values() -> None:
    def blob(deleted: float) -> str:
        metrics = [{"Name": "ItemsDeleted", "Unit": "Count"}, {"Name": "ItemsIsolated", "Unit": "Count"}]
        return json.dumps(
            {
                "_aws": {
                    "CloudWatchMetrics": [{"Namespace": "Lethe", "Dimensions": [["dataset"]], "Metrics": metrics}]
                },
                "dataset": "invoices",
                "ItemsDeleted": [deleted],
                "ItemsIsolated": [0.0],
            }
        )

    assert condense(blob(0.0)) is None
    shown = condense(blob(3.0))
    assert shown is not None
    assert "ItemsDeleted=3" in shown
    assert "ItemsIsolated" not in shown
    assert "dataset=invoices" in shown


def test_other_lines_pass_through_unchanged() -> None:
    assert condense("  GET    /discovery   200") == "  GET    /discovery   200"
    assert condense("{not json}") == "{not json}"


def test_stream_writes_complete_lines_only() -> None:
    target = io.StringIO()
    stream = CondensingStream(target)

    stream.write("first half ")
    assert target.getvalue() == ""
    stream.write("and the rest\nnext")

    assert target.getvalue() == "first half and the rest\n"
