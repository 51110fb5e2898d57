"""Exceptions raised by the orthanc-share library.

OrthancShareError
 +-- TokenError                 a token that grants nothing
 |    +-- InvalidTokenError     malformed, tampered, signed with an unknown key
 |    +-- ExpiredTokenError     the share's expiry has passed
 |    +-- RevokedTokenError     an operator revoked the share
 +-- ShareRefusedError          a share request the configuration does not allow
 +-- ViewerUnavailableError     a peer needed to open a share (MedDream) failed
 +-- ConfigurationError         settings that cannot work together
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "ExpiredTokenError",
    "InvalidTokenError",
    "OrthancShareError",
    "RevokedTokenError",
    "ShareRefusedError",
    "TokenError",
    "ViewerUnavailableError",
]


class OrthancShareError(Exception):
    """Base class of every error raised by orthanc-share."""


class TokenError(OrthancShareError):
    """A token that grants nothing."""


class InvalidTokenError(TokenError):
    """A token that is malformed, tampered with or signed with an unknown key."""


class ExpiredTokenError(TokenError):
    """A well-signed token whose share has expired."""


class RevokedTokenError(TokenError):
    """A well-signed token whose share an operator revoked."""


class ShareRefusedError(OrthancShareError):
    """A share request that the configuration does not allow; the message is for clients."""


class ViewerUnavailableError(OrthancShareError):
    """A peer needed to open a share (the MedDream token service) failed or timed out."""


class ConfigurationError(OrthancShareError):
    """Settings that cannot work together; the message names the variables."""
