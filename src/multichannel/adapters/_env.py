"""Reading adapter settings from the environment, with errors that name the missing variable."""

from __future__ import annotations

import ipaddress
import re
from typing import Final, TypeVar
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

from multichannel.errors import ConfigurationError

__all__ = ["env_prefix", "load_settings", "loopback", "plain_origin_allowed", "secret_setting"]

_S = TypeVar("_S", bound=BaseSettings)
_PREFIX: Final = re.compile(r"[A-Z][A-Z0-9_]*_")


def env_prefix(prefix: str, adapter: str) -> str:
    """``prefix`` if it can start variable names (``TWILIO_BACKUP_``); else ConfigurationError."""
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ConfigurationError(
            f"{adapter}: prefix {prefix!r} is not a variable prefix; use upper-case letters, "
            "digits and '_', starting with a letter and ending with '_' (for example "
            "'TWILIO_BACKUP_')"
        )
    return prefix


def load_settings(settings: type[_S], adapter: str, prefix: str | None = None) -> _S:
    """Build ``settings`` from the environment; ConfigurationError naming each bad variable.

    ``prefix`` replaces the settings' own ``env_prefix``. The error quotes
    variable names only, never their values, so no secret leaks.
    """
    try:
        return settings() if prefix is None else settings(_env_prefix=prefix)
    except ValidationError as err:
        if prefix is None:
            prefix = str(settings.model_config.get("env_prefix", ""))
        problems = []
        for item in err.errors():
            name = (prefix + "_".join(str(part) for part in item["loc"])).upper()
            if item["type"] == "missing":
                problems.append(f"{name} is not set")
            else:
                problems.append(f"{name} is invalid: {item['msg']}")
        raise ConfigurationError(f"{adapter}: " + "; ".join(problems)) from None


def secret_setting(value: str | SecretStr, setting: str, adapter: str) -> SecretStr:
    """``value`` as a SecretStr, trimmed; ConfigurationError if empty or holding spaces.

    A key read from a mounted secret file often ends in a newline, which an
    HTTP client would then refuse while quoting the header, key and all.
    """
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    text = text.strip()
    if not text:
        raise ConfigurationError(f"{adapter}: {setting} is empty")
    if any(char.isspace() or not char.isprintable() for char in text):
        raise ConfigurationError(f"{adapter}: {setting} contains spaces or control characters")
    return SecretStr(text)


def loopback(host: str) -> bool:
    """True when ``host`` names this machine, where plain text never crosses a network."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def plain_origin_allowed(url: str) -> bool:
    """True for https, or for plain http to this machine: secrets never cross a network bare."""
    parts = urlsplit(url.strip())
    return parts.scheme == "https" or loopback(parts.hostname or "")
