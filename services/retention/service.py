"""The retention service: keeps the retention schedule of every record."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from nameko.rpc import rpc

from services.retention.application import Retention
from shared.consumer import consumes
from shared.contracts.envelope import ReceivedEvent
from shared.dependencies import ApplicationProvider, ServiceHealth
from shared.errors import InvalidRequest, KetenError


class RetentionService:
    """Entrypoints only: each loads its message and makes one call."""

    name = "retention"

    retention = ApplicationProvider(Retention)
    health_check = ServiceHealth()

    @consumes("case_registration", "CaseRegistered")
    def handle_case_registered(self, event: ReceivedEvent) -> None:
        self.retention.record_case_registered(event)

    @consumes("case_registration", "CaseClosed")
    def handle_case_closed(self, event: ReceivedEvent) -> None:
        self.retention.record_case_closed(event)

    @consumes("data_sharing", "DataShared")
    def handle_data_shared(self, event: ReceivedEvent) -> None:
        self.retention.record_data_shared(event)

    @rpc(expected_exceptions=KetenError)
    def get_schedule(self, case_id: str) -> list[dict[str, Any]]:
        """When each record of the case is due for purging."""
        try:
            parsed = UUID(str(case_id))
        except ValueError:
            raise InvalidRequest("invalid_field", "not a valid UUID", "case_id") from None
        return self.retention.schedule_for(parsed)

    @rpc
    def health(self) -> dict[str, Any]:
        return self.health_check()
