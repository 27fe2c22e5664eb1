"""Scrubbing secrets out of upstream error text before anyone stores or shows it.

Upstreams echo what they were sent: OpenAI's 401 says "Incorrect API key provided: sk-...",
proxies repeat the whole `Authorization` header. That text becomes a routing decision's
`attempts[].error.message`, the caller's 502 body and the decision page, so it is redacted
once, where a `ProviderError` is built from an upstream failure, and capped in length.

Pure: no Django.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
MAX_ERROR_CHARS = 500
# Shorter "secrets" are placeholders ("no-key") or too common to replace without mangling text.
MIN_SECRET_CHARS = 8

_TOKEN = r"[A-Za-z0-9_\-*]"
_PATTERNS = (
    # Any bearer token, whatever its shape: keep the scheme so the message still reads.
    (re.compile(r"(?i)\b(bearer)\s+[^\s\"'<>,;]+"), r"\1 " + REDACTED),
    # OpenAI-style keys (sk-..., sk-proj-..., also the masked sk-abc****1234 form).
    (re.compile(rf"\bsk-{_TOKEN}{{6,}}"), REDACTED),
    # routerapp's own API keys (rk_<prefix>_<secret>).
    (re.compile(rf"\brk_{_TOKEN}{{8,}}"), REDACTED),
)


def redact(text: str, *, secrets: Iterable[str] = (), limit: int = MAX_ERROR_CHARS) -> str:
    """`text` with each known secret and every token-shaped string replaced by `[redacted]`,
    then cut to `limit` characters (after redacting, so a cut cannot leave half a secret)."""
    known = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
