"""Settings common to the services, read from the environment and `/run/secrets` files."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from shared.errors import ConfigurationError
from shared.models import Share, ShareType
from shared.pseudonyms import pseudonymous_share
from shared.tokens import TokenCodec
from shared.urls import OhifDataSource, viewer_url

__all__ = [
    "DEFAULT_SECRETS_DIR",
    "MIN_SECRET_BYTES",
    "CommonSettings",
    "HttpUrl",
    "LandingRoot",
    "PublicRoot",
    "load_settings",
]

logger = logging.getLogger(__name__)

DEFAULT_SECRETS_DIR = Path("/run/secrets")
MIN_SECRET_BYTES = 32


def _public_root(value: str) -> str:
    """Check an http(s) base URL and give it the trailing slash URL joining relies on."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query string or a fragment")
    return value if value.endswith("/") else value + "/"


def _landing_root(value: str) -> str:
    """A public root, or a page kept as given (OE2's `.../ui/app/token-landing.html`).

    A last path segment with a dot names a page: `?token=` is appended to it directly
    instead of to a directory, which a trailing slash would make of it.
    """
    page = urlsplit(value).path.rsplit("/", 1)[-1]
    root = _public_root(value)
    return value if "." in page else root


def _http_url(value: str) -> str:
    """Check an absolute http(s) URL used verbatim (a peer's endpoint)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


def _split_keys(value: Any) -> Any:
    """Accept a comma- or newline-separated list of keys, as operators write them in env."""
    if isinstance(value, str):
        return [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
    return value


PublicRoot = Annotated[str, AfterValidator(_public_root)]
LandingRoot = Annotated[str, AfterValidator(_landing_root)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]


class CommonSettings(BaseSettings):
    """Configuration read by every service; each service subclasses it."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    secret_key: SecretStr = Field(min_length=1)
    previous_secret_keys: Annotated[
        tuple[SecretStr, ...], NoDecode, BeforeValidator(_split_keys)
    ] = ()
    public_orthanc_root: PublicRoot | None = None
    public_anonymized_orthanc_root: PublicRoot | None = None
    public_landing_root: LandingRoot | None = None
    public_meddream_root: PublicRoot | None = None
    public_ohif_root: PublicRoot | None = None
    ohif_data_source: OhifDataSource = OhifDataSource.DICOM_WEB
    # An OHIF whose DICOMweb data source reads through the anonymizer.
    public_anonymized_ohif_root: PublicRoot | None = None
    meddream_token_service_url: HttpUrl | None = None
    meddream_storage: str = "Orthanc"
    meddream_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Keys the pseudonyms of anonymized shares (their links name pseudonymous studies).
    anonymization_key: SecretStr | None = None
    database_url: SecretStr | None = None
    revocation_refresh_seconds: float = Field(default=5.0, gt=0, le=3600)
    log_level: str = "INFO"

    @field_validator("anonymization_key")
    @classmethod
    def _anonymization_key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # A new setting, with no links to keep working: refuse weak keys outright.
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The original orthanc-share read /run/secrets/NAME before the environment;
        # operators switching to us keep that precedence.
        return (init_settings, file_secret_settings, env_settings)

    @property
    def meddream_enabled(self) -> bool:
        """Whether both MedDream settings are present."""
        return bool(self.meddream_token_service_url and self.public_meddream_root)

    def orthanc_root(self, anonymized: bool) -> str | None:
        """Public root of the Orthanc that serves a share."""
        return self.public_anonymized_orthanc_root if anonymized else self.public_orthanc_root

    def viewer_root(self, share: Share) -> str | None:
        """Public root of the viewer that opens a share: OHIF's, or its Orthanc's."""
        if share.type is ShareType.OHIF_VIEWER_PUBLICATION:
            return self.public_anonymized_ohif_root if share.anonymized else self.public_ohif_root
        return self.orthanc_root(share.anonymized)

    def viewer_link(self, share: Share, token: str) -> str | None:
        """The direct viewer URL of a share (no landing), or None if it cannot be built.

        An anonymized share's link names its studies by their pseudonyms: the anonymizer
        serves them under those names only, and through DICOMweb only, so anonymized OHIF
        shares open by StudyInstanceUID whatever OHIF_DATA_SOURCE says.
        """
        source = self.ohif_data_source
        if share.anonymized:
            if self.anonymization_key is None:
                return None
            share = pseudonymous_share(share, self.anonymization_key.get_secret_value().encode())
            source = OhifDataSource.DICOM_WEB
        return viewer_url(share, token, self.viewer_root(share), ohif_data_source=source)

    def signing_keys(self) -> tuple[bytes, ...]:
        """The current key first, then the previous keys accepted for verification only."""
        keys = [self.secret_key, *self.previous_secret_keys]
        return tuple(key.get_secret_value().encode() for key in keys)

    def token_codec(self) -> TokenCodec:
        """The token codec of these keys; it mints anonymized shares if it has their key."""
        key = self.anonymization_key
        return TokenCodec(
            self.signing_keys(),
            anonymization_key=key.get_secret_value().encode() if key is not None else None,
        )

    def warn_about_weak_settings(self) -> None:
        """Log loud warnings for settings that work but should be fixed."""
        for name, key in (("SECRET_KEY", self.secret_key),) + tuple(
            ("PREVIOUS_SECRET_KEYS", k) for k in self.previous_secret_keys
        ):
            if len(key.get_secret_value().encode()) < MIN_SECRET_BYTES:
                logger.warning(
                    "%s is shorter than %d bytes: anyone who guesses it can forge share links; "
                    "generate a new one with `orthanc-share gen-secret` when you can "
                    "(keep the old one in PREVIOUS_SECRET_KEYS so existing links still open)",
                    name,
                    MIN_SECRET_BYTES,
                )


def _describe(error: ValidationError) -> str:
    """One line naming each wrong variable, without its value."""
    problems = []
    for item in error.errors():
        name = str(item["loc"][0]).upper() if item["loc"] else "settings"
        problems.append(f"{name}: {item['msg']}")
    return "; ".join(problems)


S = TypeVar("S", bound=CommonSettings)


def load_settings(cls: type[S], secrets_dir: Path | None = DEFAULT_SECRETS_DIR, **values: Any) -> S:
    """Build a service's settings once, turning validation errors into one clear line."""
    kwargs: dict[str, Any] = dict(values)
    if secrets_dir is not None and secrets_dir.is_dir():
        kwargs["_secrets_dir"] = secrets_dir
    try:
        return cls(**kwargs)
    except ValidationError as error:
        raise ConfigurationError(f"invalid configuration: {_describe(error)}") from None
    except SettingsError as error:
        # Raised for values that are not valid JSON (USERS); its text names the field only.
        field = re.search(r'field "(\w+)"', str(error))
        name = field.group(1).upper() if field else "a variable"
        raise ConfigurationError(f"invalid configuration: {name}: not valid JSON") from None
