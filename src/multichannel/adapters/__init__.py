"""Adapters: the protocol, the registry, and the built-in ones.

The provider adapters (`TwilioSMS`, `TwilioVoiceDrop`, `SendGridEmail`,
`SMTPEmail`, `TelnyxFax`) are attributes of this package, each imported on
first use; their SDKs are imported only when an adapter is built. So this
package imports without any extra installed, and a missing extra fails only
where it is used, with the ``pip install`` line that fixes it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

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


def __getattr__(name: str) -> Any:
    module = _BUILT_IN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    adapter = getattr(importlib.import_module(module), name)
    globals()[name] = adapter
    return adapter


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
