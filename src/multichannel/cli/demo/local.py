"""``multichannel demo --providers local``: the demo through the real adapters and their SDKs.

The adapters talk to the stand-ins of `multichannel.cli.demo.standins` on 127.0.0.1,
so a newcomer sees the requests Twilio, an SMTP server (or SendGrid) and
Telnyx would get, without an account. chloe's mail server refuses her address
outright, so her email fails when it is sent rather than by a later bounce.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import cast

from multichannel import Adapter, Contact, EventKind
from multichannel.adapters.sendgrid import SendGridEmail
from multichannel.adapters.smtp import SMTPEmail
from multichannel.adapters.telnyx import TelnyxFax
from multichannel.adapters.twilio_sms import TwilioSMS
from multichannel.adapters.twilio_voice import TwilioVoiceDrop
from multichannel.cli.demo.script import (
    DEMO_DAYS,
    DEMO_START,
    SCRIPT,
    DemoRun,
    demo_contacts,
    run_demo,
)
from multichannel.cli.demo.standins import HOST, Standins, run_standins

__all__ = ["LOCAL_SCRIPT", "Endpoints", "local_standins", "run_local_demo"]

# The stand-ins require credentials to be present and never check them.
_ACCOUNT_SID = "AC" + "0" * 32
_DEMO_SECRET = "demo"  # noqa: S105 - a placeholder the stand-ins accept, not a secret
_FROM_NUMBER = "+13125790015"
_FROM_EMAIL = "clinic@example.com"
_REFUSED = ("chloe", "email")

# chloe's bounce comes from her mail server's refusal, not from a scripted event.
LOCAL_SCRIPT = tuple(
    item for item in SCRIPT if (item.contact_id, item.kind) != ("chloe", EventKind.FAILED)
)


@dataclass(frozen=True)
class Endpoints:
    """Where the stand-ins listen: enough for this or another process to build the adapters."""

    twilio_url: str
    sendgrid_url: str
    telnyx_url: str
    smtp_port: int | None

    @classmethod
    def of(cls, standins: Standins) -> Endpoints:
        """The endpoints of running stand-ins."""
        return cls(
            twilio_url=standins.twilio_url,
            sendgrid_url=standins.sendgrid_url,
            telnyx_url=standins.telnyx_url,
            smtp_port=standins.smtp_port,
        )

    @property
    def email(self) -> str:
        """The email provider used: ``smtp``, or ``sendgrid`` when there is no SMTP stand-in."""
        return "sendgrid" if self.smtp_port is None else "smtp"

    def adapters(self) -> list[Adapter]:
        """The real adapters, pointed at the stand-ins. Raises ConfigurationError."""
        email: Adapter
        if self.smtp_port is None:
            email = cast(
                Adapter,
                SendGridEmail(
                    api_key=_DEMO_SECRET, from_email=_FROM_EMAIL, base_url=self.sendgrid_url
                ),
            )
        else:
            email = cast(
                Adapter,
                SMTPEmail(host=HOST, port=self.smtp_port, from_email=_FROM_EMAIL, starttls=False),
            )
        return [
            cast(
                Adapter,
                TwilioSMS(
                    account_sid=_ACCOUNT_SID,
                    auth_token=_DEMO_SECRET,
                    from_number=_FROM_NUMBER,
                    base_url=self.twilio_url,
                ),
            ),
            cast(
                Adapter,
                TwilioVoiceDrop(
                    account_sid=_ACCOUNT_SID,
                    auth_token=_DEMO_SECRET,
                    from_number=_FROM_NUMBER,
                    base_url=self.twilio_url,
                ),
            ),
            email,
            cast(
                Adapter,
                TelnyxFax(
                    api_key=_DEMO_SECRET,
                    connection_id="demo",
                    from_number=_FROM_NUMBER,
                    base_url=self.telnyx_url,
                ),
            ),
        ]

    def to_json(self) -> str:
        """The endpoints as one line of JSON, for `from_json` in another process."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Endpoints:
        """Endpoints from `to_json`'s output. Raises ValueError for anything else."""
        try:
            fields = json.loads(text)
            urls = [fields[name] for name in ("twilio_url", "sendgrid_url", "telnyx_url")]
            port = fields["smtp_port"]
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"{text!r} is not the stand-ins' endpoints") from None
        if not all(isinstance(url, str) for url in urls) or not isinstance(port, int | None):
            raise ValueError(f"{text!r} is not the stand-ins' endpoints")
        return cls(twilio_url=urls[0], sendgrid_url=urls[1], telnyx_url=urls[2], smtp_port=port)


def _refused_address(contacts: list[Contact]) -> str:
    contact_id, channel = _REFUSED
    [address] = [
        point.address
        for contact in contacts
        if contact.id == contact_id
        for point in contact.points
        if point.channel == channel
    ]
    return address


@contextmanager
def local_standins() -> Iterator[tuple[Standins, Endpoints, tuple[str, ...]]]:
    """Run the stand-ins set up for the demo; yield them, their endpoints and notes to print.

    Raises OSError if a port cannot be bound.
    """
    with run_standins() as standins:
        endpoints = Endpoints.of(standins)
        notes = []
        if standins.smtp_problem is not None:
            notes.append(f"Email goes through SendGrid's stand-in: {standins.smtp_problem}.")
        address = _refused_address(demo_contacts())
        if endpoints.email == "smtp":
            standins.reject(address, 550)
            refusal = "the SMTP stand-in answers 550 to RCPT TO"
        else:
            standins.reject(address, 400)
            refusal = "the SendGrid stand-in answers 400"
        notes.append(f"chloe's mail server refuses {address} ({refusal}), so her email bounces.")
        yield standins, endpoints, tuple(notes)


def run_local_demo(*, start: datetime = DEMO_START, days: int = DEMO_DAYS) -> DemoRun:
    """Play the demo through the real adapters against local stand-ins; keep their traffic.

    Raises OSError if a stand-in cannot listen, ConfigurationError if an SDK is missing.
    """
    with local_standins() as (standins, endpoints, notes):
        run = run_demo(start=start, days=days, adapters=endpoints.adapters(), script=LOCAL_SCRIPT)
        traffic = standins.received
    return replace(run, providers="local", traffic=tuple(traffic), notes=notes)
