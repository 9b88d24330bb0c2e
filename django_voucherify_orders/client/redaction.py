"""Masking of secrets in anything we print, log or store."""

from __future__ import annotations

import re

__all__ = ["MASK", "redact_url"]

MASK = "********"

# Download URLs carry an authorization token in the query string.
_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&#\s'\"]+", re.IGNORECASE)


def redact_url(text: str) -> str:
    """Mask ``token=...`` query values wherever they appear in ``text``."""
    return _TOKEN_IN_QUERY.sub(rf"\g<1>{MASK}", text)
