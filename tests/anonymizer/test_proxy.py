"""What the proxy keeps between requests never outlives or outreaches the token.

The verified-token cache and the per-share index spare the anonymizer work on every
frame; neither may let a request through that the token itself would not. Revocation is
the authorization plugin's check: the anonymizer forwards the viewer's token with every
request, so a revoked token is refused by Orthanc whatever the anonymizer has cached.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import respx
from starlette.datastructures import Headers, QueryParams
from starlette.responses import Response

from anonymizer.errors import RefusedError, UpstreamStatusError
from anonymizer.index import IndexCache
from anonymizer.proxy import AnonymizingProxy
from anonymizer.upstream import Limits, Upstream
from shared.pseudonyms import pseudonymizer_for
from shared.tokens import TokenCodec, VerifiedTokenCache
from tests.anonymizer.conftest import ANONYMIZATION_KEY, STUDY_ID, STUDY_UID, UPSTREAM, mint
from tests.factories import SECRET

pytestmark = pytest.mark.anyio

OTHER_STUDY_UID = "1.2.840.113619.2.55.9.9"
OTHER_STUDY_ID = "99999999-22222222-33333333-44444444-55555555"
MIB = 1024 * 1024


class Clock:
    """Wall-clock seconds that only move when told to."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def router() -> respx.Router:
    return respx.Router(base_url=UPSTREAM, assert_all_mocked=True)


@pytest.fixture
async def proxy(router: respx.Router, clock: Clock) -> AsyncIterator[AnonymizingProxy]:
    async with httpx.AsyncClient(
        base_url=UPSTREAM, transport=httpx.MockTransport(router.async_handler)
    ) as client:
        yield AnonymizingProxy(
            Upstream(client),
            VerifiedTokenCache(
                TokenCodec([SECRET.encode()], anonymization_key=ANONYMIZATION_KEY.encode()),
                clock=clock,
            ),
            IndexCache(ANONYMIZATION_KEY.encode(), 300.0),
            Limits(MIB, MIB),
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


def study_answer(study_id: str, study_uid: str) -> httpx.Response:
    return httpx.Response(
        200, json={"ID": study_id, "MainDicomTags": {"StudyInstanceUID": study_uid}}
    )


async def get(proxy: AnonymizingProxy, path: str, token: str) -> Response:
    return await proxy.handle(
        "GET", path, Headers({"authorization": f"Bearer {token}"}), QueryParams("")
    )


async def test_a_cached_token_is_refused_once_its_share_expires(
    proxy: AnonymizingProxy, router: respx.Router, clock: Clock
) -> None:
    expires = datetime.fromtimestamp(clock.now + 3600, UTC)
    token, share = mint(**{"expiration-date": expires.isoformat()})
    pseudo = pseudonymizer_for(share, ANONYMIZATION_KEY.encode())
    route = router.get(f"/studies/{STUDY_ID}").mock(return_value=study_answer(STUDY_ID, STUDY_UID))
    path = f"/studies/{pseudo.orthanc_id(STUDY_ID)}"

    await get(proxy, path, token)
    clock.now = expires.timestamp()

    with pytest.raises(RefusedError, match="expired"):
        await get(proxy, path, token)
    assert route.call_count == 1


async def test_a_token_does_not_open_a_study_another_share_made_known(
    proxy: AnonymizingProxy, router: respx.Router
) -> None:
    mine, my_share = mint()
    theirs, _ = mint(studies=[{"dicom-uid": OTHER_STUDY_UID, "orthanc-id": OTHER_STUDY_ID}])
    my_pseudo = pseudonymizer_for(my_share, ANONYMIZATION_KEY.encode())
    route = router.get(f"/studies/{STUDY_ID}").mock(return_value=study_answer(STUDY_ID, STUDY_UID))

    await get(proxy, f"/studies/{my_pseudo.orthanc_id(STUDY_ID)}", mine)
    for path in (
        f"/studies/{my_pseudo.orthanc_id(STUDY_ID)}",
        f"/studies/{STUDY_ID}",
        f"/dicom-web/studies/{my_pseudo.uid(STUDY_UID)}/metadata",
        f"/dicom-web/studies/{STUDY_UID}/metadata",
    ):
        with pytest.raises(RefusedError, match="not in the share"):
            await get(proxy, path, theirs)

    assert route.call_count == 1


async def test_orthanc_still_judges_every_request_of_a_cached_share(
    proxy: AnonymizingProxy, router: respx.Router
) -> None:
    token, share = mint()
    pseudo = pseudonymizer_for(share, ANONYMIZATION_KEY.encode())
    # Granted, then refused: the plugin learnt that the share was revoked.
    route = router.get(f"/studies/{STUDY_ID}").mock(
        side_effect=[study_answer(STUDY_ID, STUDY_UID), httpx.Response(403)]
    )
    path = f"/studies/{pseudo.orthanc_id(STUDY_ID)}"

    await get(proxy, path, token)
    with pytest.raises(UpstreamStatusError) as refused:
        await get(proxy, path, token)

    assert refused.value.status == 403
    assert route.calls.last.request.headers["authorization"] == f"Bearer {token}"
