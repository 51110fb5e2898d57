"""The validation endpoint the Orthanc authorization plugin calls on every uncached request.

It is a plain ASGI endpoint rather than a FastAPI route: it runs for every viewer
request, and FastAPI's dependency and body machinery cost more than the decision itself.
It does no I/O besides the request: tokens come from the verified-token cache and
revocations from the in-memory list.
"""

from __future__ import annotations

import functools
import json
import logging
import time

from pydantic import ValidationError
from starlette.types import Receive, Scope

from shared.auth import Role
from shared.grants import Decision, decide, extract_token
from shared.models import Share, ValidationRequest
from token_service.asgi import (
    TOO_LARGE,
    Answer,
    PlainEndpoint,
    credentials_problem,
    json_answer,
    read_body,
    request_headers,
)

__all__ = ["ValidationEndpoint"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


@functools.cache
def _decision_answer(granted: bool, validity: int) -> Answer:
    # Few distinct answers exist (validity is bounded): each is serialised once.
    return json_answer(200, json.dumps({"granted": granted, "validity": validity}).encode())


_BAD_BODY = json_answer(
    400, b'{"detail":"The body must be a JSON object of the authorization plugin"}'
)


class ValidationEndpoint(PlainEndpoint):
    """`POST /shares/validate` and `POST /tokens/validate`: `{granted, validity}` always."""

    async def answer(self, scope: Scope, receive: Receive) -> Answer:
        token_header, authorization = request_headers(scope)
        refused = credentials_problem(self._services, authorization, Role.VALIDATOR)
        if refused is not None:
            return refused
        raw = await read_body(receive, MAX_BODY_BYTES)
        if raw is None:
            return TOO_LARGE
        try:
            request = ValidationRequest.model_validate_json(raw)
        except ValidationError:
            return _BAD_BODY
        decision = self.decide(request, token_header, authorization)
        return _decision_answer(decision.granted, decision.validity)

    def decide(
        self, request: ValidationRequest, token_header: str | None, authorization: str | None
    ) -> Decision:
        """Decide a parsed validation request."""
        services = self._services
        token = extract_token(token_header, authorization, request.token_value)
        share = services.tokens.lookup(token) if token is not None else None
        revoked = isinstance(share, Share) and share.revocation_key in services.revocations
        decision = decide(
            share,
            revoked=revoked,
            method=request.method,
            level=request.level,
            dicom_uid=request.dicom_uid,
            orthanc_id=request.orthanc_id,
            server_id=request.server_id if request.server_id is not None else request.identifier,
            policy=services.policy,
            now=time.time(),
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "validation %s (%s): method=%s level=%s orthanc-id=%s",
                "granted" if decision.granted else "denied",
                decision.reason.value,
                request.method,
                request.level,
                request.orthanc_id,
            )
        return decision
