"""Twilio callbacks: message status, inbound messages (replies, STOP and START) and call status.

Every word Twilio uses is read through `VOCABULARY`, one table keyed by the
form field and its value, so what each word means is written in one place.
The ``parse_*`` functions read a form that has already been verified; the
methods of `TwilioWebhooks` verify the signature first and are what a web
framework's view should call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from urllib.parse import parse_qsl

from pydantic import SecretStr

from multichannel.consent import Keyword, read_keyword
from multichannel.dispatch import DeliveryEvent, EventKind
from multichannel.webhooks._signatures import (
    MalformedWebhook,
    TwilioSignature,
    excerpt,
    point_address,
)

__all__ = [
    "VOCABULARY",
    "TwilioWebhooks",
    "parse_call_status",
    "parse_inbound_message",
    "parse_message_status",
]

_PROVIDER = "twilio"
_MAX_FIELDS = 500
_REPLY_EXCERPT = 160
_DELIVERED = EventKind.DELIVERED
_FAILED = EventKind.FAILED
_OUT = EventKind.OPTED_OUT
_IN = EventKind.OPTED_IN

VOCABULARY: Mapping[tuple[str, str], tuple[EventKind | None, str]] = MappingProxyType(
    {
        # Message status callbacks. None: still on its way, no event yet.
        ("MessageStatus", "accepted"): (None, "accepted by the messaging service"),
        ("MessageStatus", "scheduled"): (None, "scheduled"),
        ("MessageStatus", "queued"): (None, "queued"),
        ("MessageStatus", "sending"): (None, "sending"),
        ("MessageStatus", "sent"): (None, "handed to the carrier"),
        ("MessageStatus", "delivered"): (_DELIVERED, "the carrier confirmed delivery"),
        ("MessageStatus", "read"): (_DELIVERED, "the recipient read it"),
        ("MessageStatus", "undelivered"): (_FAILED, "the carrier could not deliver it"),
        ("MessageStatus", "failed"): (_FAILED, "Twilio could not send it"),
        ("MessageStatus", "canceled"): (_FAILED, "canceled before it was sent"),
        # Error codes on an undelivered or failed message.
        # Not delivered because of an earlier STOP: the number is marked opted out
        # and the dispatch falls back, as when the send itself is refused with 21610.
        ("ErrorCode", "21610"): (_FAILED, "the recipient replied STOP to this sender"),
        ("ErrorCode", "21211"): (_FAILED, "the To number is not a valid phone number"),
        ("ErrorCode", "21612"): (_FAILED, "the route between these numbers is not supported"),
        ("ErrorCode", "21614"): (_FAILED, "the To number is not a mobile number"),
        ("ErrorCode", "30001"): (_FAILED, "too many messages queued for this sender"),
        ("ErrorCode", "30002"): (_FAILED, "the Twilio account is suspended"),
        ("ErrorCode", "30003"): (_FAILED, "the handset is unreachable (off or out of coverage)"),
        ("ErrorCode", "30004"): (_FAILED, "the message was blocked for this recipient"),
        ("ErrorCode", "30005"): (_FAILED, "the destination number is unknown or inactive"),
        ("ErrorCode", "30006"): (_FAILED, "the number is a landline or its carrier unreachable"),
        ("ErrorCode", "30007"): (_FAILED, "the carrier filtered the message"),
        ("ErrorCode", "30008"): (_FAILED, "the carrier reported an unknown error"),
        ("ErrorCode", "30009"): (_FAILED, "a segment of the message went missing"),
        ("ErrorCode", "30010"): (_FAILED, "the message price exceeded the maximum set"),
        ("ErrorCode", "30034"): (_FAILED, "the sender number is not registered for A2P 10DLC"),
        # Inbound messages: Twilio's own verdict when it sends one (Advanced Opt-Out);
        # otherwise the body is read by `multichannel.consent.read_keyword`.
        ("OptOutType", "STOP"): (_OUT, "replied with an opt-out keyword"),
        ("OptOutType", "START"): (_IN, "replied with an opt-in keyword"),
        ("OptOutType", "HELP"): (None, "asked for help"),
        # Call status callbacks, for voicemail drops.
        ("CallStatus", "queued"): (None, "queued"),
        ("CallStatus", "initiated"): (None, "dialling"),
        ("CallStatus", "ringing"): (None, "ringing"),
        ("CallStatus", "in-progress"): (None, "in progress"),
        ("CallStatus", "completed"): (_DELIVERED, "the call connected and ended"),
        ("CallStatus", "busy"): (_FAILED, "the line was busy"),
        ("CallStatus", "no-answer"): (_FAILED, "nobody and no voicemail answered"),
        ("CallStatus", "failed"): (_FAILED, "the call could not be placed"),
        ("CallStatus", "canceled"): (_FAILED, "the call was canceled before it was answered"),
        # Answering-machine detection on a completed call.
        ("AnsweredBy", "human"): (_DELIVERED, "a person answered and heard the message"),
        ("AnsweredBy", "machine_start"): (_DELIVERED, "voicemail answered; message played"),
        ("AnsweredBy", "machine_end_beep"): (_DELIVERED, "voicemail left after the beep"),
        ("AnsweredBy", "machine_end_silence"): (_DELIVERED, "voicemail left after the greeting"),
        ("AnsweredBy", "machine_end_other"): (_DELIVERED, "voicemail left after the greeting"),
        ("AnsweredBy", "fax"): (_FAILED, "a fax machine answered"),
        ("AnsweredBy", "unknown"): (_DELIVERED, "the call connected; who answered is unknown"),
    }
)


def _meaning(field: str, value: str) -> tuple[EventKind | None, str] | None:
    return VOCABULARY.get((field, value))


def _required(form: Mapping[str, str], *names: str) -> str:
    for name in names:
        value = form.get(name, "").strip()
        if value:
            return value
    raise MalformedWebhook(f"the callback has no {names[0]} field", provider=_PROVIDER)


_OPTED_OUT_CODES = frozenset({"21610"})


def parse_message_status(form: Mapping[str, str]) -> list[DeliveryEvent]:
    """Events for a verified message status callback: none while the message is on its way.

    Raises MalformedWebhook when MessageSid or MessageStatus is missing.
    """
    sid = _required(form, "MessageSid", "SmsSid")
    status = _required(form, "MessageStatus", "SmsStatus").lower()
    known = _meaning("MessageStatus", status)
    if known is None or known[0] is None:
        return []
    kind, detail = known
    code = form.get("ErrorCode", "").strip()
    if kind is _FAILED:
        error = _meaning("ErrorCode", code)
        if error is not None:
            kind = error[0]
            detail = f"{status}, Twilio error {code}: {error[1]}"
        elif code:
            detail = f"{status}, Twilio error {code}: {detail}"
        else:
            detail = f"{status}: {detail}"
    to = form.get("To", "").strip()
    return [
        DeliveryEvent(
            kind=kind,
            provider_id=sid,
            channel="sms" if to else None,
            address=point_address("sms", to) if to else None,
            detail=detail,
            point_opted_out=kind is _FAILED and code in _OPTED_OUT_CODES,
        )
    ]


def parse_inbound_message(form: Mapping[str, str]) -> list[DeliveryEvent]:
    """Events for a verified inbound message: opted out, opted back in (and answered), or answered.

    Raises MalformedWebhook when From is missing.
    """
    sender = point_address("sms", _required(form, "From"))
    inbound_id = form.get("MessageSid", "").strip() or form.get("SmsMessageSid", "").strip() or None
    body = form.get("Body", "")
    known = _meaning("OptOutType", form.get("OptOutType", "").strip().upper()) or _keyword(body)
    if known is not None and known[0] is None:
        return []  # HELP or INFO: Twilio answers it; it is neither an answer nor consent
    text = excerpt(body, _REPLY_EXCERPT)
    detail = f"replied: {text}" if text else "replied without text"
    reply = DeliveryEvent(
        kind=EventKind.RESPONDED,
        channel="sms",
        address=sender,
        detail=detail,
        inbound_id=inbound_id,
    )
    if known is None:
        return [reply]
    keyword_event = DeliveryEvent(
        kind=known[0], channel="sms", address=sender, detail=known[1], inbound_id=inbound_id
    )
    # Opting back in ("YES", "START") is also an answer: a message that asked
    # "reply YES to confirm" must not escalate after it.
    return [keyword_event, reply] if known[0] is EventKind.OPTED_IN else [keyword_event]


def parse_call_status(form: Mapping[str, str]) -> list[DeliveryEvent]:
    """Events for a verified call status callback: delivered once a person or voicemail heard it.

    A fax machine answering is a failure. Raises MalformedWebhook when CallSid
    or CallStatus is missing.
    """
    sid = _required(form, "CallSid")
    status = _required(form, "CallStatus").lower()
    answered = _meaning("AnsweredBy", form.get("AnsweredBy", "").strip().lower())
    known = _meaning("CallStatus", status)
    # Who answered says more than the status: a fax machine fails the drop even on a
    # connected call, and a voicemail or a person explains a completed one.
    connected = known is not None and known[0] is _DELIVERED
    if answered is not None and (answered[0] is _FAILED or connected):
        known = answered
    if known is None or known[0] is None:
        return []
    to = form.get("To", "").strip()
    return [
        DeliveryEvent(
            kind=known[0],
            provider_id=sid,
            channel="voice" if to else None,
            address=point_address("voice", to) if to else None,
            at=_call_time(form.get("Timestamp", "")),
            detail=f"call {status}: {known[1]}",
        )
    ]


_KEYWORD_EVENTS = {Keyword.OPT_OUT: _OUT, Keyword.OPT_IN: _IN, Keyword.HELP: None}


def _keyword(body: str) -> tuple[EventKind | None, str] | None:
    keyword = read_keyword(body)
    if keyword is None:
        return None
    return _KEYWORD_EVENTS[keyword], f"replied {excerpt(body.strip(), 20)}"


def _call_time(text: str) -> datetime | None:
    try:
        at = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return at if at.tzinfo is not None else None


class TwilioWebhooks:
    """Verifies Twilio's X-Twilio-Signature and turns its callbacks into `DeliveryEvent`s.

    ``url`` is the full URL Twilio called as the public sees it (scheme, host,
    path and query), ``body`` the raw form body. Raises ConfigurationError when
    the auth token is empty or the twilio SDK is missing.
    """

    def __init__(self, *, auth_token: str | SecretStr) -> None:
        self._signature = TwilioSignature(auth_token)

    def message_status(
        self, *, url: str, body: bytes | str, headers: Mapping[str, str]
    ) -> list[DeliveryEvent]:
        """Verify and read a message status callback.

        Raises SignatureError for a missing or wrong signature, MalformedWebhook
        for a body that is not a status callback.
        """
        return parse_message_status(self._verified(url, body, headers))

    def inbound_message(
        self, *, url: str, body: bytes | str, headers: Mapping[str, str]
    ) -> list[DeliveryEvent]:
        """Verify and read an inbound message. Raises SignatureError or MalformedWebhook."""
        return parse_inbound_message(self._verified(url, body, headers))

    def call_status(
        self, *, url: str, body: bytes | str, headers: Mapping[str, str]
    ) -> list[DeliveryEvent]:
        """Verify and read a call status callback. Raises SignatureError or MalformedWebhook."""
        return parse_call_status(self._verified(url, body, headers))

    def _verified(self, url: str, body: bytes | str, headers: Mapping[str, str]) -> dict[str, str]:
        # An unsigned request is refused as such (403) before its body is read.
        self._signature.require_header(headers)
        fields = _form(body)
        self._signature.verify(url=url, form=fields, headers=headers)
        return dict(fields)

    def __repr__(self) -> str:
        return "TwilioWebhooks(auth_token=SecretStr('**********'))"


def _form(body: bytes | str) -> Sequence[tuple[str, str]]:
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        return parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise MalformedWebhook(
            "the body is not a URL-encoded form in UTF-8", provider=_PROVIDER
        ) from None
