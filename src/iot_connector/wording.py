"""Counts in messages: "1 request", "2 requests", never "1 requests" or "request(s)"."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`count` and the noun in the right number; `nouns` for an irregular plural (default: noun + "s")."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
