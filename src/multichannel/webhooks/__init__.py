"""Provider callbacks in, `DeliveryEvent`s out: parsers, signature checks and an ASGI app.

Each provider has a class that verifies a callback's signature and reads it
(`TwilioWebhooks`, `SendGridWebhooks`, `TelnyxWebhooks`); `record_events`
hands the events to a dispatcher; `create_app` does both behind ready-made
routes. This package imports without Starlette; `create_app` needs it
(``pip install 'multichannel[webhooks]'``).
"""

from multichannel.webhooks._signatures import (
    InvalidSignature,
    MalformedWebhook,
    MissingSignature,
    SignatureError,
    StaleSignature,
)
from multichannel.webhooks.app import arecord_events, create_app, record_events
from multichannel.webhooks.sendgrid import SendGridWebhooks
from multichannel.webhooks.telnyx import TelnyxWebhooks
from multichannel.webhooks.twilio import TwilioWebhooks

__all__ = [
    "InvalidSignature",
    "MalformedWebhook",
    "MissingSignature",
    "SendGridWebhooks",
    "SignatureError",
    "StaleSignature",
    "TelnyxWebhooks",
    "TwilioWebhooks",
    "arecord_events",
    "create_app",
    "record_events",
]
