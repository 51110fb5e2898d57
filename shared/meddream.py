"""Client of the MedDream token service, which mints the short-lived tokens its viewer reads."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx

from shared.errors import ViewerUnavailableError

__all__ = ["MedDreamClient"]

logger = logging.getLogger(__name__)

_MAX_TOKEN_LENGTH = 4096


class MedDreamClient:
    """Asks MedDream's token service (`POST .../v3/generate`) for a token on some studies."""

    def __init__(self, url: str, storage: str, client: httpx.AsyncClient) -> None:
        self._url = url
        self._storage = storage
        self._client = client

    async def create_token(self, study_uids: Sequence[str]) -> str:
        """A fresh MedDream token for the studies; ViewerUnavailableError if MedDream fails."""
        body = {
            "items": [{"studies": {"study": uid, "storage": self._storage}} for uid in study_uids]
        }
        try:
            response = await self._client.post(self._url, json=body)
        except httpx.HTTPError as error:
            logger.warning("MedDream token service unreachable: %s", type(error).__name__)
            raise ViewerUnavailableError("MedDream token service unreachable") from None
        token = response.text.strip()
        # The service answers the bare token as text; anything else (an error page, a
        # JSON error, an empty body) must not become a link.
        if (
            not response.is_success
            or not token
            or len(token) > _MAX_TOKEN_LENGTH
            or any(c.isspace() or c in "<>{}\"'" for c in token)
        ):
            logger.warning(
                "MedDream token service answered HTTP %d without a token", response.status_code
            )
            raise ViewerUnavailableError("MedDream token service failed")
        return token
