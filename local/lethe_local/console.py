"""Readable console output for the local stack.

In AWS, each function's structured JSON log lines and EMF metric blobs go to CloudWatch. Locally they
share one terminal, so this stream condenses them: a log line becomes `level function message k=v`,
and a metrics blob lists only the metrics that are not zero. LETHE_LOCAL_RAW_LOGS=1 keeps them as is.
"""

from __future__ import annotations

import json
import threading
from typing import Any, TextIO

# Keys Powertools adds to every line; they say nothing new on a local console.
_ROUTINE = {
    "level",
    "location",
    "message",
    "timestamp",
    "service",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "xray_trace_id",
    "sampling_rate",
    "correlation_id",
    "exception",
    "exception_name",
    "stack_trace",
}


def condense(line: str) -> str | None:
    """The console form of one output line; None drops it (an all-zero metrics blob)."""
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return line
    try:
        record = json.loads(text)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    if "_aws" in record:
        return _metrics(record)
    if "level" in record and "message" in record:
        return _log(record)
    return line


def _log(record: dict[str, Any]) -> str:
    extra = " ".join(f"{k}={_short(v)}" for k, v in record.items() if k not in _ROUTINE)
    head = f"    {record['level']:<7} {record.get('function_name', record.get('service', '')):<26} {record['message']}"
    out = f"{head}  {extra}" if extra else head
    if record.get("exception"):
        out += "\n" + "\n".join(f"        {row}" for row in str(record["exception"]).splitlines())
    return out


def _metrics(record: dict[str, Any]) -> str | None:
    names = [m["Name"] for block in record["_aws"].get("CloudWatchMetrics", []) for m in block.get("Metrics", [])]
    values = {name: _total(record.get(name)) for name in names}
    shown = {name: value for name, value in values.items() if value}
    if not shown:
        return None
    dimensions = [
        f"{d}={record[d]}"
        for block in record["_aws"].get("CloudWatchMetrics", [])
        for group in block.get("Dimensions", [])
        for d in group
        if d in record and d != "service"
    ]
    metrics = " ".join(f"{name}={value:g}" for name, value in shown.items())
    return f"    METRIC  {' '.join(dict.fromkeys(dimensions)):<26} {metrics}"


def _total(value: Any) -> float:
    if isinstance(value, list):
        return float(sum(v for v in value if isinstance(v, int | float)))
    return float(value) if isinstance(value, int | float) else 0.0


def _short(value: Any) -> str:
    if isinstance(value, dict):  # counters: the zeros are noise on a console
        value = {k: v for k, v in value.items() if v not in (0, None, "", [], {})}
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


class CondensingStream:
    """A text stream that condenses complete lines with `condense` and writes them to `target`."""

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self._pending = threading.local()
        self._lock = threading.Lock()

    def write(self, data: str) -> int:
        buffered = getattr(self._pending, "text", "") + data
        *lines, rest = buffered.split("\n")
        self._pending.text = rest
        if lines:
            rendered = [r for r in (condense(line) for line in lines) if r is not None]
            if rendered:
                with self._lock:
                    self.target.write("\n".join(rendered) + "\n")
                    self.target.flush()
        return len(data)

    def flush(self) -> None:
        with self._lock:
            self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def encoding(self) -> str:
        return self.target.encoding
