"""How dispatches begin: alone (`Dispatcher.send`) or a chunk at a time (`send_many`).

A new dispatch's first decision is made before it is stored, so that a first
step for later (quiet hours) or none is written with it in one write, and a
batch's such steps together (`create_many`); a send is made once the
dispatch is stored, on the decision already made.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import NamedTuple

from multichannel._engine.batch import BatchResult, Prepared
from multichannel._engine.loop import Loop
from multichannel._engine.send import Steps
from multichannel.contacts import Contact
from multichannel.dispatch import Dispatch
from multichannel.errors import IdempotencyConflict
from multichannel.messages import Message
from multichannel.store.base import create_many
from multichannel.strategy import Action

__all__ = ["Starting"]

logger = logging.getLogger("multichannel.dispatcher")


class _Fresh(NamedTuple):
    """A dispatch not yet stored, its first decision and the opt-outs that decision read."""

    dispatch: Dispatch
    action: Action
    opted_out: frozenset[tuple[str, str]]


class Starting(Loop):
    """The dispatcher's part that starts dispatches."""

    def _preparer(self, message: Message) -> Callable[[list[Contact]], list[Prepared]]:
        """How `send_many` prepares a chunk of contacts: every first decision at once.

        The chunk's opt-outs are read in one look-up, and the dispatches that
        wait or stop are stored in one `create_many`; the others are sends for
        the threads. Should storing them together fail, each is stored on its
        own, so that one bad dispatch fails only its contact.
        """

        def prepare(chunk: list[Contact]) -> list[Prepared]:
            opted_out = self.store.opted_out(
                (point.channel, point.address) for contact in chunk for point in contact.points
            )
            prepared: list[Prepared | _Fresh] = []
            for contact in chunk:
                try:
                    prepared.append(self._fresh(contact, message, opted_out))
                except Exception as error:
                    prepared.append(BatchResult(contact, None, error))
            later = [
                item for item in prepared if isinstance(item, _Fresh) and item.action.kind != "send"
            ]
            try:
                stored = (
                    dict(
                        zip(
                            (id(fresh.dispatch) for fresh in later),
                            create_many(self.store, [fresh.dispatch for fresh in later]),
                            strict=True,
                        )
                    )
                    if later
                    else {}
                )
            except Exception as err:
                # Only the error's type: its words may quote an address from the batch.
                logger.warning(
                    "storing %d dispatches together failed (%s); storing each alone",
                    len(later),
                    type(err).__name__,
                )
                stored = {}
            return [
                self._prepared(
                    contact,
                    item,
                    stored.get(id(item.dispatch)) if isinstance(item, _Fresh) else None,
                )
                for contact, item in zip(chunk, prepared, strict=True)
            ]

        return prepare

    def _prepared(
        self, contact: Contact, item: Prepared | _Fresh, stored: Dispatch | None
    ) -> Prepared:
        if not isinstance(item, _Fresh):
            return item
        fresh = item
        if stored is None:
            return lambda: self._drive(self._created(fresh, self.store.create(fresh.dispatch)))
        try:
            return BatchResult(contact, self._drive(self._created(fresh, stored)), None)
        except Exception as error:
            return BatchResult(contact, None, error)

    def _start(self, contact: Contact, message: Message) -> Steps[Dispatch]:
        fresh = self._fresh(contact, message, self._opted_out(contact))
        return (yield from self._created(fresh, self.store.create(fresh.dispatch)))

    def _fresh(
        self, contact: Contact, message: Message, opted_out: frozenset[tuple[str, str]]
    ) -> _Fresh:
        """A new dispatch and its first decision, made before it is stored.

        A first step that waits or stops is written with the dispatch, in one
        write; a send is made once the dispatch is stored (`_created`).
        """
        now = self.clock.now()
        fresh = Dispatch(
            id=uuid.uuid4().hex,
            contact_id=contact.id,
            contact=contact,
            message=message,
            created_at=now,
            updated_at=now,
            next_action_at=now,
            dry_run=self.registry.dry_run,
        )
        fresh.note(now, f"dispatch created for contact {contact.id}")
        action = self._decide(fresh, now, opted_out)
        if action.kind != "send":
            self._log(fresh, action)
            self._follow(fresh, action, now)
        return _Fresh(fresh, action, opted_out)

    def _created(self, fresh: _Fresh, stored: Dispatch) -> Steps[Dispatch]:
        """Go on with ``fresh`` as ``create`` answered: its own copy, or one keyed alike."""
        made = fresh.dispatch
        if stored.id != made.id:
            if stored.message.fingerprint() != made.message.fingerprint():
                raise IdempotencyConflict(
                    f"key {made.message.key!r} was already used for contact "
                    f"{made.contact_id!r} with a different message (dispatch {stored.id})"
                )
            return stored
        if fresh.action.kind != "send":
            return stored
        return (yield from self._advance(stored, decided=(fresh.action, fresh.opted_out)))
