"""AdminApiFunction: operator actions. IAM-authorized in AWS; a bearer token on the local stack.
Filing an inbox message submits through intake, so its invocations register with intake's idempotency."""

from __future__ import annotations

from lethe.api import admin
from lethe.handlers.rest import rest_function

app, handle = rest_function(admin.register, openapi_path="/admin/openapi.json", title="Lethe admin")
