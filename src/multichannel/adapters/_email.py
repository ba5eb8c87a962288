"""What both email adapters need: a safe subject line and a bare mailbox."""

from __future__ import annotations

from email.utils import parseaddr

from multichannel.errors import ConfigurationError
from multichannel.messages import Content

__all__ = ["mailbox", "subject_line"]

# RFC 5322 asks for lines under 78 characters; a subject that fits stays readable.
_SUBJECT_LENGTH = 78


def subject_line(content: Content) -> str:
    """The subject to send: the content's own, else the body's first line, shortened.

    Line breaks become spaces, so no subject can inject a header.
    """
    if content.subject and content.subject.strip():
        return " ".join(content.subject.split())
    for line in content.body.splitlines():
        words = " ".join(line.split())
        if words:
            if len(words) <= _SUBJECT_LENGTH:
                return words
            cut = words[: _SUBJECT_LENGTH - 1].rsplit(" ", 1)[0]
            return cut.rstrip(" ,;:.") + "…"
    return "(no subject)"


def mailbox(setting: str, value: str, adapter: str) -> str:
    """``value``'s bare address (``Name <a@b.c>`` gives ``a@b.c``); ConfigurationError if none."""
    address = parseaddr(value)[1]
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or any(char in value for char in "\r\n"):
        raise ConfigurationError(f"{adapter}: {setting} {value!r} is not an email address")
    return address
