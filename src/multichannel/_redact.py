"""Masking of personal data for logs: phone numbers and email addresses."""

from __future__ import annotations

__all__ = ["mask_address"]


def mask_address(address: str) -> str:
    """``+1734***0100`` for a number, ``a***@example.com`` for an email, ``ab***`` otherwise."""
    if "@" in address:
        local, _, domain = address.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if address.startswith("+") and len(address) > 8:
        return f"{address[:5]}***{address[-4:]}"
    return f"{address[:2]}***"
