"""Reading and saving a dispatch under the store's revision check: the one place that does it.

Every change to a stored dispatch is made on a copy and saved only if nobody
saved since that copy was read; on a lost race the change is made again on
the newest copy, so that no answer, event or cancel is ever written over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from multichannel.dispatch import Dispatch
from multichannel.errors import StaleDispatch, UnknownDispatch
from multichannel.store import Store

__all__ = ["change_until_saved", "read_again", "save_unless_stale"]

logger = logging.getLogger("multichannel.dispatcher")


def save_unless_stale(store: Store, dispatch: Dispatch) -> bool:
    """Save ``dispatch``; False, writing nothing, when someone saved it since it was read."""
    try:
        store.save(dispatch)
    except StaleDispatch:
        logger.info("dispatch %s changed meanwhile; reading it again", dispatch.id)
        return False
    return True


def read_again(store: Store, dispatch: Dispatch) -> Dispatch:
    """The newest stored copy of ``dispatch``; UnknownDispatch when the store lost it."""
    found = store.get(dispatch.id)
    if found is None:
        raise UnknownDispatch(f"dispatch {dispatch.id} is no longer in the store")
    return found


def change_until_saved(
    store: Store, dispatch: Dispatch, change: Callable[[Dispatch], bool]
) -> Dispatch:
    """Apply ``change`` (True: it changed something) and save, on the newest copy until it holds."""
    while change(dispatch) and not save_unless_stale(store, dispatch):
        dispatch = read_again(store, dispatch)
    return dispatch
