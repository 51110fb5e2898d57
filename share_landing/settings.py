"""Configuration of the share landing page."""

from __future__ import annotations

from pathlib import Path

from shared.settings import CommonSettings

__all__ = ["Settings"]


class Settings(CommonSettings):
    """Landing settings: common ones plus the texts and pages shown for unusable links.

    Titles and messages may contain simple markup (`<br/>`, `<b>`, `<a href>`); it is
    sanitised before rendering.
    """

    title_expired_token: str = "This link has expired"
    message_expired_token: str = (
        "The images shared with you through this link are no longer available.<br/>"
        "Please ask the person who sent it for a new link."
    )
    title_invalid_token: str = "This link is not valid"
    message_invalid_token: str = (
        "The link may be incomplete or may have been withdrawn.<br/>"
        "Check that you opened the whole link, or ask the person who sent it for a new one."
    )
    title_unavailable: str = "The viewer is temporarily unavailable"
    message_unavailable: str = (
        "Your link is valid, but the viewer cannot be reached right now.<br/>"
        "Please try again in a few minutes."
    )
    landing_pages_dir: Path | None = None
