"""Retrying a step in place on a transient AWS error (lethe.aws.retry_transient), for logic whose
step is a sequence of storage calls that is safe to repeat as a whole. A single storage call
retries itself in the data function that makes it (lethe.aws.retried)."""

from __future__ import annotations

from lethe.aws import retry_transient as retry_step

__all__ = ["retry_step"]
