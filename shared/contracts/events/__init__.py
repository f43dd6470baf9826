"""Domain events the platform publishes on ``keten.events`` (routing key ``<source>.<event>``).

One module per publishing service. Tolerant readers: unknown fields are ignored, so a new
optional field does not break a consumer. Personal values travel sealed (``SealedValue``);
subjects by pseudonym. A schema registers itself in ``EVENT_SCHEMAS`` by defining ``event_name``,
and loads into the frozen dataclass of that name defined beside it (``decode_event`` hands it
to consumers as ``ReceivedEvent[CaseRegistered]``).
"""

from shared.contracts.events import (  # noqa: F401
    case_registration,
    consent,
    data_sharing,
    notification,
    retention,
)
from shared.contracts.events.base import EVENT_SCHEMAS, EventSchema

__all__ = ["EVENT_SCHEMAS", "EventSchema"]
