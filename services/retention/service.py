"""The retention service: keeps the retention schedule of every record, purges on time, holds
purges under a legal hold and decides citizens' erasure requests."""

from __future__ import annotations

import logging
from typing import Any, cast
from uuid import UUID

from nameko.rpc import rpc

from services.retention.application import RetentionUseCases
from shared.catchup import published_events_page
from shared.commands import AgencyCommands
from shared.consumer import consumes
from shared.contracts.commands import dump_reply, load_command
from shared.contracts.commands.retention import (
    ErasureDecisionSchema,
    ErasureRequestSchema,
    LiftLegalHoldSchema,
    PlaceLegalHoldSchema,
    ScheduleEntrySchema,
)
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.case_registration import CaseClosed, CaseRegistered, CaseResumed, CaseStopped
from shared.contracts.events.data_sharing import DataShared
from shared.contracts.registry import schema_instance
from shared.dependencies import ApplicationProvider, ServiceHealth, settings_timer
from shared.errors import InvalidRequest, KetenError
from shared.tlog import consistency_answer, head_answer

log = logging.getLogger(__name__)


class RetentionService:
    """Entrypoints only: each loads its message through its schema, makes one use-case call
    and answers with the result dumped through its schema."""

    name = "retention"

    retention = ApplicationProvider(RetentionUseCases)
    agency_commands = AgencyCommands()
    health_check = ServiceHealth()

    @consumes("case_registration", "CaseRegistered")
    def handle_case_registered(self, event: ReceivedEvent[CaseRegistered]) -> None:
        """A new case: its records are open until it ends; its outcome is kept."""
        self.retention.record_case_registered(event)

    @consumes("case_registration", "CaseStopped")
    def handle_case_stopped(self, event: ReceivedEvent[CaseStopped]) -> None:
        """A case stopped by every subject's objection has ended: its records get their end date."""
        self.retention.record_case_stopped_or_resumed(event)

    @consumes("case_registration", "CaseResumed")
    def handle_case_resumed(self, event: ReceivedEvent[CaseResumed]) -> None:
        """A stopped case runs again: its case records wait for its end once more."""
        self.retention.record_case_stopped_or_resumed(event)

    @consumes("case_registration", "CaseClosed")
    def handle_case_closed(self, event: ReceivedEvent[CaseClosed]) -> None:
        """A closed case: its records' periods start."""
        self.retention.record_case_closed(event)

    @consumes("data_sharing", "DataShared")
    def handle_data_shared(self, event: ReceivedEvent[DataShared]) -> None:
        """A share: its record's period starts."""
        self.retention.record_data_shared(event)

    @settings_timer("purge_interval")
    def purge_due(self) -> None:
        """Purges every record whose retention period is over (``KETEN_PURGE_INTERVAL``)."""
        report = self.retention.purge_due()
        if report.purged or report.held:
            log.info("purge run: %s purged, %s held by a legal hold", report.purged, report.held)

    @rpc(expected_exceptions=KetenError)
    def get_schedule(self, case_id: str, agency: str) -> list[dict[str, Any]]:
        """When each record of the case is due for purging; for an agency on the case."""
        try:
            parsed = UUID(str(case_id))
        except ValueError:
            raise InvalidRequest("invalid_field", "not a valid UUID", "case_id") from None
        entries = self.retention.schedule_for(parsed, agency)
        return cast(list[dict[str, Any]], schema_instance(ScheduleEntrySchema).dump(entries, many=True))

    @rpc(expected_exceptions=KetenError)
    def place_legal_hold(self, command: dict[str, Any]) -> dict[str, Any]:
        """Suspends the purges of a case (``PlaceLegalHoldSchema``); repeat-safe by ``hold_id``."""
        loaded = load_command(PlaceLegalHoldSchema, command)
        return dump_reply(PlaceLegalHoldSchema, self.retention.place_legal_hold(loaded))

    @rpc(expected_exceptions=KetenError)
    def lift_legal_hold(self, command: dict[str, Any]) -> dict[str, Any]:
        """Lifts a legal hold (``LiftLegalHoldSchema``); due purges proceed at the next run."""
        loaded = load_command(LiftLegalHoldSchema, command)
        return dump_reply(LiftLegalHoldSchema, self.retention.lift_legal_hold(loaded))

    @rpc(expected_exceptions=KetenError)
    def request_erasure(self, request: dict[str, Any]) -> dict[str, Any]:
        """A citizen's erasure request (``ErasureRequestSchema``): granted or refused, on record."""
        loaded = load_command(ErasureRequestSchema, request)
        decision = self.retention.request_erasure(loaded)
        return cast(dict[str, Any], schema_instance(ErasureDecisionSchema).dump(decision))

    @rpc
    def health(self) -> dict[str, Any]:
        return self.health_check()

    @rpc(expected_exceptions=KetenError)
    def published_events(self, request: dict[str, Any]) -> dict[str, Any]:
        """This service's published events after a position, as a signed page: what a consumer
        that found a gap in the stream catches up from (``shared.catchup``)."""
        return published_events_page(self.retention, request)

    @rpc
    def log_head(self) -> dict[str, Any]:
        """The latest signed head of this service's verifiable log (``shared.tlog``)."""
        return head_answer(self.retention)

    @rpc(expected_exceptions=KetenError)
    def log_consistency(self, request: dict[str, Any]) -> dict[str, Any]:
        """The proof that this service's log extends itself at an earlier size (for witnesses)."""
        return consistency_answer(self.retention, request)
