"""The case_registration service: registers cases at consultation tables, activates them, adds
and removes participants, stops a case for a subject who objects, and closes it."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.case_registration.application import CaseRegistration
from shared.commands import AgencyCommands
from shared.consumer import consumes
from shared.contracts.commands import (
    ActivateCaseSchema,
    AddParticipantSchema,
    CloseCaseSchema,
    RegisterCaseSchema,
    RemoveParticipantSchema,
    load_command,
)
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.consent import ObjectionLodged, ObjectionWithdrawn
from shared.contracts.events.retention import RecordsPurged
from shared.dependencies import ApplicationProvider, Pseudonyms, ServiceHealth
from shared.errors import KetenError


class CaseRegistrationService:
    """Entrypoints only: each loads its message through a schema and makes one call."""

    name = "case_registration"

    cases = ApplicationProvider(CaseRegistration)
    pseudonyms = Pseudonyms()
    agency_commands = AgencyCommands()
    health_check = ServiceHealth()

    @rpc(expected_exceptions=KetenError)
    def register_case(self, command: dict[str, Any]) -> dict[str, Any]:
        """Registers a case (``RegisterCaseSchema``); repeat-safe by ``case_id``."""
        return _status(
            self.cases.register_case(load_command(RegisterCaseSchema, command, pseudonymise=self.pseudonyms))
        )

    @rpc(expected_exceptions=KetenError)
    def close_case(self, command: dict[str, Any]) -> dict[str, Any]:
        """Closes a case with an outcome (``CloseCaseSchema``)."""
        loaded = load_command(CloseCaseSchema, command)
        return _status(self.cases.close_case(loaded.case_id, loaded.agency, loaded.outcome))

    @rpc(expected_exceptions=KetenError)
    def activate_case(self, command: dict[str, Any]) -> dict[str, Any]:
        """Starts the table's work on a registered case (``ActivateCaseSchema``)."""
        loaded = load_command(ActivateCaseSchema, command)
        return _status(self.cases.activate_case(loaded.case_id, loaded.agency))

    @rpc(expected_exceptions=KetenError)
    def add_participant(self, command: dict[str, Any]) -> dict[str, Any]:
        """Adds an agency to a case (``AddParticipantSchema``)."""
        return _status(self.cases.add_participant(load_command(AddParticipantSchema, command)))

    @rpc(expected_exceptions=KetenError)
    def remove_participant(self, command: dict[str, Any]) -> dict[str, Any]:
        """Removes an agency from a case (``RemoveParticipantSchema``)."""
        return _status(self.cases.remove_participant(load_command(RemoveParticipantSchema, command)))

    @consumes("consent", "ObjectionLodged")
    def handle_objection_lodged(self, event: ReceivedEvent[ObjectionLodged]) -> None:
        self.cases.record_objection_lodged(event)

    @consumes("consent", "ObjectionWithdrawn")
    def handle_objection_withdrawn(self, event: ReceivedEvent[ObjectionWithdrawn]) -> None:
        self.cases.record_objection_withdrawn(event)

    @consumes("retention", "RecordsPurged")
    def handle_records_purged(self, event: ReceivedEvent[RecordsPurged]) -> None:
        self.cases.record_records_purged(event)

    @rpc
    def health(self) -> dict[str, Any]:
        return self.health_check()


def _status(case: Any) -> dict[str, Any]:
    return {"case_id": str(case.id), "status": case.status}
