"""Secrets out of log lines: tokens in query strings, Basic/Bearer credentials, passwords.

This module owns what a log line of the drive or the links service may not show. It imports only
the standard library, so every service can use it without loading more.
"""

from __future__ import annotations

import logging
import re

#: ``name=value`` pairs whose value is a secret (query strings, forms)
_SECRET_PAIR = re.compile(
    r"(?i)\b((?:access_|api_|auth_|x-)?token|password|passwd|secret|code|_xsrf)(=|%3D)[^&\s\"';]*"
)
#: credentials in an Authorization value
_CREDENTIALS = re.compile(
    r"(?i)\b(basic|bearer)(\s+|%20|\+)[A-Za-z0-9._~+/=-]{6,}"
    r"|\b(token)(\s+|%20|\+)[A-Za-z0-9]{16,}"
)

REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with every secret replaced by ``[redacted]``."""
    text = _SECRET_PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _CREDENTIALS.sub(_keep_scheme, text)


def _keep_scheme(match: re.Match[str]) -> str:
    scheme, space = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
    return f"{scheme}{space}{REDACTED}"


class RedactingFilter(logging.Filter):
    """A handler filter that redacts each record's message (after its arguments are filled in)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def redact_handlers(logger: logging.Logger | None = None) -> None:
    """Make every handler of ``logger`` (the root logger by default) redact what it writes."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
