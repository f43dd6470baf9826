"""The case_registration service: registers cases at consultation tables and closes them."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.case_registration.application import CaseRegistration
from shared.commands import AgencyCommands
from shared.consumer import consumes
from shared.contracts.commands import CloseCaseSchema, RegisterCaseSchema, load_command
from shared.contracts.envelope import ReceivedEvent
from shared.dependencies import ApplicationProvider, ServiceHealth
from shared.errors import KetenError


class CaseRegistrationService:
    """Entrypoints only: each loads its message through a schema and makes one call."""

    name = "case_registration"

    cases = ApplicationProvider(CaseRegistration)
    agency_commands = AgencyCommands()
    health_check = ServiceHealth()

    @rpc(expected_exceptions=KetenError)
    def register_case(self, command: dict[str, Any]) -> dict[str, Any]:
        """Registers a case (``RegisterCaseSchema``); repeat-safe by ``case_id``."""
        case = self.cases.register_case(load_command(RegisterCaseSchema, command))
        return {"case_id": str(case.id), "status": case.status}

    @rpc(expected_exceptions=KetenError)
    def close_case(self, command: dict[str, Any]) -> dict[str, Any]:
        """Closes a case with an outcome (``CloseCaseSchema``)."""
        loaded = load_command(CloseCaseSchema, command)
        case = self.cases.close_case(loaded["case_id"], loaded["agency"], loaded["outcome"])
        return {"case_id": str(case.id), "status": case.status}

    @consumes("retention", "RecordsPurged")
    def handle_records_purged(self, event: ReceivedEvent) -> None:
        self.cases.record_records_purged(event)

    @rpc
    def health(self) -> dict[str, Any]:
        return self.health_check()
