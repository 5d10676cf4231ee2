"""Body fields shared by the public and admin consent routes."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import ConfigDict, Field, StrictBool

from lethe.domain import Model
from lethe.logic.consent import EMAIL_PATTERN, SOURCE_PATTERN, SUBJECT_ID_PATTERN, HistoryEntry
from lethe.logic.policy_versions import VERSION_PATTERN

SubjectId = Annotated[str, Field(pattern=SUBJECT_ID_PATTERN, description="A device or account id")]
SubjectPath = Annotated[str, Path(pattern=SUBJECT_ID_PATTERN)]
Purposes = Annotated[
    dict[Annotated[str, Field(max_length=64)], StrictBool],
    Field(min_length=1, max_length=16, description="Purpose name -> granted; strictly_necessary cannot be false"),
]
PolicyVersionField = Annotated[str, Field(pattern=VERSION_PATTERN, description="The policy version shown")]
SourceField = Annotated[
    str, Field(pattern=SOURCE_PATTERN, description="Where the choice was made: banner, settings, signup...")
]
EmailField = Annotated[
    str | None,
    Field(
        max_length=254,
        pattern=EMAIL_PATTERN,
        description="Only with a grant of marketing_email or policy_updates: held unconfirmed until the link "
        "emailed to it is followed",
    ),
]


class Choices(Model):
    model_config = ConfigDict(extra="forbid")

    purposes: Purposes
    policy_version: PolicyVersionField
    source: SourceField
    email: EmailField = None


class History(Model):
    subject_id: str
    changes: list[HistoryEntry]
