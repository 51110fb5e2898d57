"""`PUT /shares` as a plain ASGI endpoint, answered before FastAPI's stack.

Scripts create shares in bulk, and FastAPI's routing, dependency and body machinery cost
more than creating a share (about two thirds of the time, measured). The FastAPI route in
`routes` declares the same route for the API description and gives the same answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from starlette.types import Receive, Scope

from shared.auth import Role
from shared.errors import ShareRefusedError, ViewerUnavailableError
from shared.models import ShareRequest
from token_service.asgi import (
    TOO_LARGE,
    Answer,
    PlainEndpoint,
    credentials_problem,
    json_answer,
    read_body,
    request_headers,
)
from token_service.shares import create_share

__all__ = ["ShareCreationEndpoint", "validation_errors"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
_UNAVAILABLE = json_answer(502, b'{"detail":"The viewer\'s token service is unavailable"}')


def validation_errors(errors: Sequence[Mapping[str, Any]], prefix: tuple[str, ...] = ()) -> bytes:
    """A 422 body naming where and what, never echoing the input (pydantic's `input`)."""
    detail = [
        {"loc": [*prefix, *e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]
    return json.dumps({"detail": detail}).encode()


class ShareCreationEndpoint(PlainEndpoint):
    """`PUT /shares`: admit a share and answer its token and link."""

    async def answer(self, scope: Scope, receive: Receive) -> Answer:
        _, authorization = request_headers(scope)
        refused = credentials_problem(self._services, authorization, Role.ADMIN)
        if refused is not None:
            return refused
        raw = await read_body(receive, MAX_BODY_BYTES)
        if raw is None:
            return TOO_LARGE
        try:
            request = ShareRequest.model_validate_json(raw)
        except ValidationError as error:
            return json_answer(422, validation_errors(error.errors(), ("body",)))
        try:
            created = await create_share(request, self._services)
        except ShareRefusedError as error:
            return json_answer(400, json.dumps({"detail": str(error)}).encode())
        except ViewerUnavailableError:
            return _UNAVAILABLE
        return json_answer(200, created.model_dump_json(by_alias=True).encode())
