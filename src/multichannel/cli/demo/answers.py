"""How Twilio, SendGrid and Telnyx answer, for the stand-ins in `multichannel.cli.demo.standins`.

Each responder takes a request and a refusal check and returns the answer the
provider would give, in the provider's own shapes: Twilio's Messages and Calls
resources and its ``{"code", "message", "more_info", "status"}`` errors,
SendGrid's empty 202 with ``X-Message-Id`` and its ``{"errors": [...]}`` body,
Telnyx's ``{"data": {...}}`` fax record and its ``{"errors": [...]}`` body.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs

__all__ = [
    "Answer",
    "Refusal",
    "Request",
    "Respond",
    "as_number",
    "sendgrid",
    "telnyx",
    "twilio",
]

_TWILIO_PATH = "/2010-04-01/Accounts/"
# Fields of a new call that Twilio fills in only later.
_CALL_NULLS = (
    "annotation", "answered_by", "caller_name", "duration", "end_time", "forwarded_from",
    "group_sid", "parent_call_sid", "phone_number_sid", "start_time", "trunk_sid",
)  # fmt: skip
# Twilio error code: HTTP status and message, as Twilio words them.
_TWILIO_ERRORS: dict[int, tuple[int, str]] = {
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21217: (400, "Phone number does not appear to be valid"),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
}
# SendGrid HTTP status: the message of its error.
_SENDGRID_ERRORS: dict[int, str] = {
    400: "Does not contain a valid address.",
    401: "The provided authorization grant is invalid, expired, or revoked",
    403: "access forbidden",
    413: "Payload Too Large",
    429: "too many requests",
    500: "internal error",
}
# Telnyx error code: HTTP status, title and detail.
_TELNYX_ERRORS: dict[str, tuple[int, str, str]] = {
    "10002": (422, "Invalid phone number", "The phone number is invalid."),
    "10016": (422, "Phone number must be in +E.164 format", "Use the +E.164 format."),
    "10009": (401, "Authentication failed", "Could not understand the provided credentials."),
    "10010": (403, "Authorization failed", "You do not have permission to send this fax."),
    "10011": (429, "Too many requests", "You have exceeded the maximum number of requests."),
    "10007": (500, "Unexpected error", "An unexpected error occured."),
}


@dataclass(frozen=True)
class Answer:
    """A status, a JSON payload (None for an empty body) and extra headers."""

    status: int
    payload: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """What a stand-in was sent; header names are lower case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


# Whether an address is to be refused, and with which code.
Refusal = Callable[[str], tuple[bool, int | str | None]]
Respond = Callable[[Request, Refusal], tuple[Answer, dict[str, Any]]]


def as_number(code: int | str | None) -> int:
    """A refusal code as a number (``"21610"`` reads as 21610); 0 when it is not one."""
    text = str(code).strip()
    return int(text) if text.isdigit() else 0


def _form(body: bytes) -> dict[str, Any]:
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] if len(values) == 1 else values for name, values in fields.items()}


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body or b"null")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _twilio_error(code: int, **values: str) -> Answer:
    status, message = _TWILIO_ERRORS.get(code, (400, "Bad request"))
    payload = {
        "code": code,
        "message": message.format(**values),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Answer(status, payload)


def twilio(request: Request, refusal: Refusal) -> tuple[Answer, dict[str, Any]]:
    """Twilio's answer to a POST to the Messages or Calls resource, and the parsed form."""
    form = _form(request.body)
    account, _, resource = request.path.removeprefix(_TWILIO_PATH).partition("/")
    if not request.path.startswith(_TWILIO_PATH) or resource not in ("Messages.json", "Calls.json"):
        return _twilio_error(20404), form
    if not request.headers.get("authorization", "").startswith("Basic "):
        return _twilio_error(20003), form
    to = str(form.get("To", ""))
    refused, code = refusal(to) if to else (False, None)
    if refused:
        number = as_number(code)
        return _twilio_error(number if number in _TWILIO_ERRORS else 21211, to=to), form
    if not to or not (form.get("From") or form.get("MessagingServiceSid")):
        return _twilio_error(21604 if not to else 21603), form
    now = format_datetime(datetime.now(UTC))
    kind = "Messages" if resource == "Messages.json" else "Calls"
    sid = ("SM" if kind == "Messages" else "CA") + uuid.uuid4().hex
    uri = f"{_TWILIO_PATH}{account}/{kind}/{sid}"
    common = {
        "account_sid": account,
        "api_version": "2010-04-01",
        "date_created": now,
        "date_updated": now,
        "direction": "outbound-api",
        "from": form.get("From"),
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "queued",
        "to": to,
        "uri": f"{uri}.json",
    }
    if kind == "Messages":
        via_service = bool(form.get("MessagingServiceSid")) and not form.get("From")
        media = form.get("MediaUrl")
        resource_body = common | dict.fromkeys(("date_sent", "error_code", "error_message"))
        resource_body |= {
            "body": form.get("Body", ""),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": str(len(media) if isinstance(media, list) else int(media is not None)),
            "num_segments": "1",
            "status": "accepted" if via_service else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
        }
    else:
        resource_body = common | dict.fromkeys(_CALL_NULLS)
        resource_body |= {
            "from_formatted": form.get("From"),
            "queue_time": "0",
            "to_formatted": to,
            "subresource_uris": {"recordings": f"{uri}/Recordings.json"},
        }
    return Answer(201, resource_body), form


def _sendgrid_error(status: int, field_name: str | None = None) -> Answer:
    message = _SENDGRID_ERRORS.get(status, "Bad Request")
    headers = {}
    if status == 429:
        reset = str(int(datetime.now(UTC).timestamp()) + 1)
        headers = {
            "X-RateLimit-Limit": "600",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
        }
    payload = {"errors": [{"message": message, "field": field_name, "help": None}]}
    return Answer(status, payload, headers)


def sendgrid(request: Request, refusal: Refusal) -> tuple[Answer, dict[str, Any]]:
    """SendGrid's answer to a POST to v3/mail/send, and the parsed JSON."""
    mail = _json(request.body)
    if request.path != "/v3/mail/send":
        return _sendgrid_error(404), mail or {}
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return _sendgrid_error(401), mail or {}
    if mail is None:
        return _sendgrid_error(400), {}
    for number, personalization in enumerate(mail.get("personalizations") or []):
        for role in ("to", "cc", "bcc"):
            for index, recipient in enumerate(personalization.get(role) or []):
                refused, code = refusal(str(recipient.get("email", "")))
                if refused:
                    wanted = as_number(code)
                    status = wanted if wanted in _SENDGRID_ERRORS else 400
                    where = f"personalizations.{number}.{role}.{index}.email"
                    return _sendgrid_error(status, where if status == 400 else None), mail
    message_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
    return Answer(202, None, {"X-Message-Id": message_id}), mail


def _telnyx_error(code: str, pointer: str | None = None) -> Answer:
    status, title, detail = _TELNYX_ERRORS.get(code, (422, "Bad Request", "Invalid request."))
    error: dict[str, Any] = {
        "code": code,
        "title": title,
        "detail": detail,
        "meta": {"url": f"https://developers.telnyx.com/docs/overview/errors/{code}"},
    }
    if pointer:
        error["source"] = {"pointer": pointer}
    headers = {"Retry-After": "1"} if status == 429 else {}
    return Answer(status, {"errors": [error]}, headers)


def telnyx(request: Request, refusal: Refusal) -> tuple[Answer, dict[str, Any]]:
    """Telnyx's answer to a POST to v2/faxes, and the parsed JSON."""
    fax = _json(request.body)
    if request.path != "/v2/faxes":
        return _telnyx_error("10005"), fax or {}
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return _telnyx_error("10009"), fax or {}
    if fax is None:
        return _telnyx_error("10015"), {}
    for name in ("connection_id", "to", "from", "media_url"):
        if not fax.get(name):
            return _telnyx_error("10004", f"/{name}"), fax
    refused, code = refusal(str(fax["to"]))
    if refused:
        known = str(code) if code is not None and str(code) in _TELNYX_ERRORS else "10002"
        return _telnyx_error(known, "/to" if known in ("10002", "10016") else None), fax
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    data = {
        "record_type": "fax",
        "id": str(uuid.uuid4()),
        "connection_id": fax["connection_id"],
        "direction": "outbound",
        "from": fax["from"],
        "to": fax["to"],
        "media_url": fax["media_url"],
        "quality": fax.get("quality", "high"),
        "status": "queued",
        "store_media": bool(fax.get("store_media", False)),
        "webhook_url": fax.get("webhook_url", ""),
        "webhook_failover_url": fax.get("webhook_failover_url", ""),
        "created_at": now,
        "updated_at": now,
    }
    return Answer(202, {"data": data}), fax
