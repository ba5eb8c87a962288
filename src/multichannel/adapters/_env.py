"""Reading adapter settings from the environment, with errors that name the missing variable."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from multichannel.errors import ConfigurationError

__all__ = ["load_settings"]

_S = TypeVar("_S", bound=BaseSettings)


def load_settings(settings: type[_S], adapter: str) -> _S:
    """Build ``settings`` from the environment; ConfigurationError naming each bad variable.

    The error quotes variable names only, never their values, so no secret leaks.
    """
    try:
        return settings()
    except ValidationError as err:
        prefix = str(settings.model_config.get("env_prefix", ""))
        problems = []
        for item in err.errors():
            name = (prefix + "_".join(str(part) for part in item["loc"])).upper()
            if item["type"] == "missing":
                problems.append(f"{name} is not set")
            else:
                problems.append(f"{name} is invalid: {item['msg']}")
        raise ConfigurationError(f"{adapter}: " + "; ".join(problems)) from None
