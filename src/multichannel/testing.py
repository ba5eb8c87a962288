"""What you need in your own tests: an outbox adapter and a clock you move by hand."""

from multichannel.adapters.outbox import Outbox, SentMessage
from multichannel.clock import ManualClock

__all__ = ["ManualClock", "Outbox", "SentMessage"]
