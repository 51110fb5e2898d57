"""Models of the plugin's `/tokens` API: parsing, expiry arithmetic and the share they make."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from shared.errors import ShareRefusedError
from shared.models import ShareType, StudyGrant, StudyRef
from shared.token_models import (
    MAX_VALIDITY_DURATION,
    DecoderErrorCode,
    OrthancResource,
    ResourceLevel,
    TokenCreationRequest,
    TokenDecoderRequest,
    TokenDecoderResponse,
)
from tests.factories import STUDY_ID, STUDY_UID, token_body

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def request(**overrides: Any) -> TokenCreationRequest:
    return TokenCreationRequest.model_validate(token_body(**overrides))


def test_max_validity_duration_is_ten_years() -> None:
    assert MAX_VALIDITY_DURATION == 315_360_000


@pytest.mark.parametrize(("given", "kept"), [(None, None), (0, None), (-7, None), (1, 1)])
def test_duration_below_one_second_is_none(given: int | None, kept: int | None) -> None:
    assert request(**{"validity-duration": given}).validity_duration == kept


def test_duration_above_ten_years_is_refused() -> None:
    request(**{"validity-duration": MAX_VALIDITY_DURATION})
    with pytest.raises(ValidationError, match="at most 315360000 seconds"):
        request(**{"validity-duration": MAX_VALIDITY_DURATION + 1})


@pytest.mark.parametrize(
    ("date", "duration", "expected"),
    [
        (None, None, None),
        (None, 60, NOW + timedelta(seconds=60)),
        ("2024-05-01T12:00:30Z", None, NOW + timedelta(seconds=30)),
        ("2024-05-01T12:00:30Z", 60, NOW + timedelta(seconds=30)),
        ("2024-05-01T12:05:00Z", 60, NOW + timedelta(seconds=60)),
        ("2024-05-01T12:00:30", None, NOW + timedelta(seconds=30)),
        ("2024-05-01T14:00:30+02:00", None, NOW + timedelta(seconds=30)),
    ],
)
def test_expires_is_the_earlier_limit(
    date: str | None, duration: int | None, expected: datetime | None
) -> None:
    parsed = request(**{"expiration-date": date, "validity-duration": duration})
    assert parsed.expires(NOW) == expected


def test_blank_type_and_date_are_absent() -> None:
    parsed = request(type="", **{"expiration-date": ""})
    assert parsed.type is None
    assert parsed.expiration_date is None


def test_share_request_of_studies() -> None:
    parsed = request(id="label", **{"validity-duration": 60})
    share = parsed.share_request(ShareType.VOLVIEW_VIEWER_PUBLICATION, NOW)
    assert share.type is ShareType.VOLVIEW_VIEWER_PUBLICATION
    assert share.id == "label"
    assert share.anonymized is False
    assert share.studies == [StudyRef(dicom_uid=STUDY_UID, orthanc_id=STUDY_ID)]
    assert share.expiration_date == NOW + timedelta(seconds=60)


@pytest.mark.parametrize("level", ["series", "instance", "patient", "system"])
def test_share_request_refuses_other_levels(level: str) -> None:
    resources = [{"dicom-uid": STUDY_UID, "level": "study"}, {"orthanc-id": "x", "level": level}]
    with pytest.raises(ShareRefusedError, match=f"resource 2 has level {level}"):
        request(resources=resources).share_request(ShareType.STONE_VIEWER_PUBLICATION, NOW)


@pytest.mark.parametrize(
    ("resource", "fragment"),
    [
        ({"dicom-uid": STUDY_UID}, "level"),
        ({"dicom-uid": STUDY_UID, "level": "volume"}, "level"),
        ({"level": "study"}, "dicom-uid or an orthanc-id"),
        ({"dicom-uid": " ", "orthanc-id": "", "level": "study"}, "dicom-uid or an orthanc-id"),
        ({"dicom-uid": "x" * 129, "level": "study"}, "dicom-uid"),
    ],
)
def test_malformed_resources(resource: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        OrthancResource.model_validate(resource)


def test_resource_level_any_case_and_blank_url() -> None:
    resource = OrthancResource.model_validate(
        {"orthanc-id": STUDY_ID, "level": " STUDY ", "url": ""}
    )
    assert resource.level is ResourceLevel.STUDY
    assert resource.url is None


def test_resource_of_a_verified_study() -> None:
    resource = OrthancResource.of_study(StudyGrant(None, STUDY_ID))
    assert resource.model_dump(by_alias=True) == {
        "dicom-uid": None,
        "orthanc-id": STUDY_ID,
        "url": None,
        "level": "study",
    }


@pytest.mark.parametrize("value", [None, 42, ["t"], {"t": 1}])
def test_decoder_request_reads_non_strings_as_no_token(value: Any) -> None:
    parsed = TokenDecoderRequest.model_validate({"token-key": value, "token-value": value})
    assert parsed.token_key is None and parsed.token_value is None


def test_decoder_response_always_has_every_field() -> None:
    response = TokenDecoderResponse(error_code=DecoderErrorCode.INVALID)
    assert response.model_dump(mode="json", by_alias=True) == {
        "token-type": None,
        "error-code": "invalid",
        "redirect-url": None,
        "resources": [],
    }
