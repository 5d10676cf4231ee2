"""PublicApiFunction: the request form, discovery, intake and verification, consents, unsubscribe."""

from __future__ import annotations

from lethe.api import public
from lethe.handlers.rest import rest_function

app, handle = rest_function(public.register, openapi_path="/openapi.json")
