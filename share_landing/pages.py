"""The texts of the landing's pages, sanitised once from the configuration."""

from __future__ import annotations

from dataclasses import dataclass

import nh3
from markupsafe import Markup

from share_landing.settings import Settings

__all__ = ["PageText", "PageTexts", "sanitise"]

_TAGS = {"a", "b", "br", "em", "i", "p", "span", "strong", "u"}
_ATTRIBUTES = {"a": {"href"}}


def sanitise(html: str) -> Markup:
    """Keep simple inline markup of an operator's text, drop everything else."""
    return Markup(
        nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https", "mailto"})
    )


def plain(html: str) -> Markup:
    """The text of an operator's markup, for places that cannot hold tags (`<title>`)."""
    return Markup(nh3.clean(html.replace("<br/>", " ").replace("<br>", " "), tags=set()))


@dataclass(frozen=True, slots=True)
class PageText:
    """Title and message of one page, ready to render."""

    title: Markup
    page_title: Markup
    message: Markup


@dataclass(frozen=True, slots=True)
class PageTexts:
    """The three pages a link can end on instead of the viewer."""

    expired: PageText
    invalid: PageText
    unavailable: PageText

    @classmethod
    def from_settings(cls, settings: Settings) -> PageTexts:
        """Sanitise the configured texts."""

        def page(title: str, message: str) -> PageText:
            return PageText(sanitise(title), plain(title), sanitise(message))

        return cls(
            expired=page(settings.title_expired_token, settings.message_expired_token),
            invalid=page(settings.title_invalid_token, settings.message_invalid_token),
            unavailable=page(settings.title_unavailable, settings.message_unavailable),
        )
