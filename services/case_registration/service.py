"""The case_registration service: registers cases at consultation tables, activates them, adds
and removes participants, stops a case for a subject who objects, and closes it."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

from services.case_registration.application import CaseRegistrationUseCases
from shared.catchup import published_events_page
from shared.commands import AgencyCommands
from shared.consumer import consumes
from shared.contracts.commands import (
    ActivateCaseSchema,
    AddParticipantSchema,
    CloseCaseSchema,
    GetCatalogueSchema,
    RegisterCaseSchema,
    RemoveParticipantSchema,
    dump_reply,
    load_command,
)
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.consent import ObjectionLodged, ObjectionWithdrawn
from shared.contracts.events.retention import RecordsPurged
from shared.dependencies import ApplicationProvider, Pseudonyms, ServiceHealth
from shared.errors import KetenError


class CaseRegistrationService:
    """Entrypoints only: each loads its message through its schema, makes one use-case call
    and answers with the command's reply schema."""

    name = "case_registration"

    cases = ApplicationProvider(CaseRegistrationUseCases)
    pseudonyms = Pseudonyms()
    agency_commands = AgencyCommands()
    health_check = ServiceHealth()

    @rpc(expected_exceptions=KetenError)
    def register_case(self, command: dict[str, Any]) -> dict[str, Any]:
        """Registers a case (``RegisterCaseSchema``); repeat-safe by ``case_id``."""
        loaded = load_command(RegisterCaseSchema, command, pseudonymise=self.pseudonyms)
        return dump_reply(RegisterCaseSchema, self.cases.register_case(loaded))

    @rpc(expected_exceptions=KetenError)
    def close_case(self, command: dict[str, Any]) -> dict[str, Any]:
        """Closes a case with an outcome (``CloseCaseSchema``)."""
        loaded = load_command(CloseCaseSchema, command)
        return dump_reply(CloseCaseSchema, self.cases.close_case(loaded))

    @rpc(expected_exceptions=KetenError)
    def get_catalogue(self, command: dict[str, Any]) -> dict[str, Any]:
        """The catalogue the platform decides by (``GetCatalogueSchema``); changes nothing."""
        loaded = load_command(GetCatalogueSchema, command)
        return dump_reply(GetCatalogueSchema, self.cases.get_catalogue(loaded))

    @rpc(expected_exceptions=KetenError)
    def activate_case(self, command: dict[str, Any]) -> dict[str, Any]:
        """Starts the table's work on a registered case (``ActivateCaseSchema``)."""
        loaded = load_command(ActivateCaseSchema, command)
        return dump_reply(ActivateCaseSchema, self.cases.activate_case(loaded))

    @rpc(expected_exceptions=KetenError)
    def add_participant(self, command: dict[str, Any]) -> dict[str, Any]:
        """Adds an agency to a case (``AddParticipantSchema``)."""
        loaded = load_command(AddParticipantSchema, command)
        return dump_reply(AddParticipantSchema, self.cases.add_participant(loaded))

    @rpc(expected_exceptions=KetenError)
    def remove_participant(self, command: dict[str, Any]) -> dict[str, Any]:
        """Removes an agency from a case (``RemoveParticipantSchema``)."""
        loaded = load_command(RemoveParticipantSchema, command)
        return dump_reply(RemoveParticipantSchema, self.cases.remove_participant(loaded))

    @consumes("consent", "ObjectionLodged")
    def handle_objection_lodged(self, event: ReceivedEvent[ObjectionLodged]) -> None:
        """An objection stops the case for its subject."""
        self.cases.record_objection_lodged(event)

    @consumes("consent", "ObjectionWithdrawn")
    def handle_objection_withdrawn(self, event: ReceivedEvent[ObjectionWithdrawn]) -> None:
        """A withdrawn objection resumes the case for its subject."""
        self.cases.record_objection_withdrawn(event)

    @consumes("retention", "RecordsPurged")
    def handle_records_purged(self, event: ReceivedEvent[RecordsPurged]) -> None:
        """A purge: the keys it destroyed leave this process's cache too."""
        self.cases.record_records_purged(event)

    @rpc
    def health(self) -> dict[str, Any]:
        return self.health_check()

    @rpc(expected_exceptions=KetenError)
    def published_events(self, request: dict[str, Any]) -> dict[str, Any]:
        """This service's published events after a position, as a signed page: what a consumer
        that found a gap in the stream catches up from (``shared.catchup``)."""
        return published_events_page(self.cases, request)
