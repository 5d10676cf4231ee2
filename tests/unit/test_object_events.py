"""ObjectCreated events as the index function reads them (EventBridge, or S3 notification Records,
whose keys are URL-encoded), and as the local stack builds them for the function the template names."""

from __future__ import annotations

from lethe.handlers.object_index import _objects
from lethe_local.objects import object_created_event, object_functions
from lethe_local.template import load_template


def test_eventbridge_and_notification_events_name_the_same_object() -> None:
    bridge = object_created_event("logs-bucket", "console-logs/a b+c.jsonl", "v1", 10)
    notification = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": "logs-bucket"},
                    "object": {"key": "console-logs/a+b%2Bc.jsonl", "versionId": "v1"},
                },
            },
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectRemoved:Delete",
                "s3": {"bucket": {"name": "x"}, "object": {"key": "k"}},
            },
        ]
    }
    assert _objects(bridge) == [("logs-bucket", "console-logs/a b+c.jsonl", "v1")]
    assert _objects(notification) == [("logs-bucket", "console-logs/a b+c.jsonl", "v1")]


def test_the_local_stack_delivers_object_events_to_the_function_of_the_template_rule() -> None:
    assert object_functions(load_template()) == ["ObjectIndexFunction"]
