"""Field types shared by the public models: what a user may pass, and what is kept."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, TypeVar

from pydantic import AfterValidator

__all__ = ["Items", "ResponseWait"]

_Item = TypeVar("_Item")

# A model field of several values: ``points: Items[ContactPoint]``. Type checkers type a
# pydantic model's ``__init__`` from its field annotations (``dataclass_transform``; users
# run no pydantic plugin), so ``tuple[X, ...]`` there would refuse the list a user writes.
# To a type checker the field is ``Sequence[X]``; to pydantic it is ``tuple[X, ...]``, so
# what is stored, and every validation error, is a tuple's.
if TYPE_CHECKING:
    Items: TypeAlias = Sequence[_Item]
else:

    class Items:
        """``Items[X]`` is ``tuple[X, ...]``: several X, given as any sequence, kept as a tuple."""

        def __class_getitem__(cls, item: Any) -> Any:
            return tuple[item, ...]


def _positive_wait(value: timedelta | None) -> timedelta | None:
    if value is not None and value <= timedelta(0):
        raise ValueError("response_wait must be longer than zero")
    return value


ResponseWait = Annotated[timedelta | None, AfterValidator(_positive_wait)]
"""How long to wait for an answer: longer than zero, or None for the default."""
