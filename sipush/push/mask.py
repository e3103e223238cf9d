"""How push tokens appear anywhere a person can read them (logs, CLI output, warnings).

``3f1a9c…2468``: the first 6 and the last 4 characters of a token long enough to keep 10 of
them hidden; less for shorter ones. ``--show-tokens`` in the CLI is the only way to see more.
"""

from __future__ import annotations

MASK_KEEP_HEAD = 6
MASK_KEEP_TAIL = 4


def mask_token(token: str) -> str:
    if len(token) >= 2 * (MASK_KEEP_HEAD + MASK_KEEP_TAIL):
        return f"{token[:MASK_KEEP_HEAD]}…{token[-MASK_KEEP_TAIL:]}"
    if len(token) >= 8:
        return f"…{token[-2:]}"
    return "…"
