"""What went wrong in a call to AWS, in AWS's own words: the code an operator reads in a failure's
reason ("MessageRejected", "AccessDeniedException"), never the message (it may quote an address)."""

from __future__ import annotations

from lethe.aws import error_code


def code_of(exc: BaseException) -> str:
    """The AWS error code behind `exc`, else its class name."""
    return error_code(exc)
