"""Adapters: the protocol, the registry, and the built-in ones.

The provider adapters (`TwilioSMS`, `TwilioVoiceDrop`, `SendGridEmail`,
`SMTPEmail`, `TelnyxFax`) are attributes of this package, each imported on
first use; their SDKs are imported only when an adapter is built. So this
package imports without any extra installed, and a missing extra fails only
where it is used, with the ``pip install`` line that fixes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from multichannel import _lazy
from multichannel.adapters.base import (
    ANY_CHANNEL,
    ENTRY_POINT_GROUP,
    Adapter,
    BaseAdapter,
    Discovered,
    Receipt,
    Registry,
    SendContext,
)
from multichannel.adapters.outbox import Outbox, SentMessage

if TYPE_CHECKING:
    from multichannel.adapters.sendgrid import SendGridEmail
    from multichannel.adapters.smtp import SMTPEmail
    from multichannel.adapters.telnyx import TelnyxFax
    from multichannel.adapters.twilio_sms import TwilioSMS
    from multichannel.adapters.twilio_voice import TwilioVoiceDrop

__all__ = [
    "ANY_CHANNEL",
    "ENTRY_POINT_GROUP",
    "Adapter",
    "BaseAdapter",
    "Discovered",
    "Outbox",
    "Receipt",
    "Registry",
    "SMTPEmail",
    "SendContext",
    "SendGridEmail",
    "SentMessage",
    "TelnyxFax",
    "TwilioSMS",
    "TwilioVoiceDrop",
]

# Each built-in adapter and the module it lives in, imported on first access.
_BUILT_IN: Final = {
    "SMTPEmail": "multichannel.adapters.smtp",
    "SendGridEmail": "multichannel.adapters.sendgrid",
    "TelnyxFax": "multichannel.adapters.telnyx",
    "TwilioSMS": "multichannel.adapters.twilio_sms",
    "TwilioVoiceDrop": "multichannel.adapters.twilio_voice",
}


__getattr__, __dir__ = _lazy(globals(), _BUILT_IN)
