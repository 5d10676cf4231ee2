"""Where a running local stack says it is: `<local dir>/stack.json` holds its API URL (with the stage, if
any) and ports, so `make invoke` and `lethe` reach a stack on any port without PORT or LETHE_API_URL.

The local dir is LETHE_LOCAL_DIR, or the nearest `.local` folder from the working directory upwards (the
stack writes `.local` in the repository root; a command run from a subfolder still finds it)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

LOCAL_DIR_NAME = ".local"
STACK_FILE = "stack.json"


def find_local_file(name: str, start: Path | None = None) -> Path | None:
    """The local stack's file `name`: in LETHE_LOCAL_DIR when set, else in the nearest `.local` upwards."""
    given = os.environ.get("LETHE_LOCAL_DIR")
    if given:
        candidate = Path(given) / name
        return candidate if candidate.is_file() else None
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / LOCAL_DIR_NAME / name
        if candidate.is_file():
            return candidate
    return None


def write(
    directory: Path, *, api_url: str, port: int, aws_port: int, stage: str | None, smtp_port: int | None = None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STACK_FILE
    record = {"api_url": api_url, "port": port, "aws_port": aws_port, "stage": stage, "pid": os.getpid()}
    if smtp_port:
        record["smtp_port"] = smtp_port
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def remove(directory: Path) -> None:
    """Remove the file if this process wrote it (a second stack in the same folder may have replaced it)."""
    path = directory / STACK_FILE
    record = _read(path)
    if record is not None and record.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def local_api_url() -> str | None:
    """The API URL the running local stack wrote, or None when no stack file is found."""
    path = find_local_file(STACK_FILE)
    record = _read(path) if path is not None else None
    url = (record or {}).get("api_url")
    return url.rstrip("/") if isinstance(url, str) and url.startswith("http") else None
