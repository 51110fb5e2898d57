"""Exceptions of the anonymizer, mapped to HTTP answers by the app's handlers.

OrthancShareError
 +-- AnonymizerError
      +-- RefusedError            a request the anonymizer does not forward (403)
      +-- UpstreamStatusError     Orthanc answered a non-2xx status (same status, generic body)
      +-- UpstreamError           Orthanc failed or answered something unusable (502)
           +-- UpstreamTimeoutError   Orthanc did not answer in time (504)
           +-- TooLargeError          an answer larger than the rewrite cap (502)
"""

from __future__ import annotations

from shared.errors import OrthancShareError

__all__ = [
    "AnonymizerError",
    "RefusedError",
    "TooLargeError",
    "UpstreamError",
    "UpstreamStatusError",
    "UpstreamTimeoutError",
]


class AnonymizerError(OrthancShareError):
    """Base class of the anonymizer's errors."""


class RefusedError(AnonymizerError):
    """A request the anonymizer does not forward; the message is for the log only."""


class UpstreamStatusError(AnonymizerError):
    """Orthanc answered a non-2xx status."""

    def __init__(self, status: int) -> None:
        super().__init__(f"upstream answered {status}")
        self.status = status


class UpstreamError(AnonymizerError):
    """Orthanc could not be reached or answered something that cannot be anonymized."""


class UpstreamTimeoutError(UpstreamError):
    """Orthanc did not answer in time."""


class TooLargeError(UpstreamError):
    """An answer larger than the configured cap for rewritten bodies."""
