"""Use cases of the consent service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from services.consent.domain import (
    ConsentRecord,
    OverrideScope,
    SafetyOverride,
    consent_record_id,
)
from shared.application import KetenApplication
from shared.casefacts import CaseFacts, CaseView
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.errors import Conflict, InvalidRequest, NotAuthorised, NotFound, domain_refusals
from shared.pseudonym import pseudonymise
from shared.sealed import KeyScope


class Consent(KetenApplication):
    name = "consent"

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)
        self.cases = CaseFacts(self)

    def give_consent(self, command: dict[str, Any]) -> ConsentRecord:
        case = self._case_for(command["case_id"], command["agency"])
        subject = pseudonymise(command["subject_bsn"], self.settings.pseudonym_secret)
        if subject not in case.subjects:
            raise InvalidRequest(
                "not_a_subject", "this person is not a data subject of the case", "subject_bsn"
            )
        if command["purpose"] != case.purpose:
            raise InvalidRequest("purpose_mismatch", "consent must be for the purpose of the case", "purpose")
        for code in command["categories"]:
            if code not in self.catalogue.categories:
                raise InvalidRequest("unknown_category", f"unknown data category {code}", "categories")
        for agency in command["recipients"]:
            if not case.takes_part(agency):
                raise InvalidRequest(
                    "not_a_participant", f"{agency} does not take part in the case", "recipients"
                )
        record = self._consent_record(case, subject)
        with domain_refusals():
            record.give_consent(
                purpose=command["purpose"],
                categories=tuple(command["categories"]),
                recipients=tuple(command["recipients"]),
                valid_until=command["valid_until"],
                notice_version=command["notice_version"],
                notice=self.seal(KeyScope(case.case_id, subject), command["notice_text"]),
                given_how=command["given_how"],
                recorded_by=command["agency"],
                today=datetime.now(UTC).date(),
            )
        self.save(record)
        return record

    def withdraw_consent(self, command: dict[str, Any]) -> ConsentRecord:
        case = self._case_for(command["case_id"], command["agency"], open_only=False)
        record = self._consent_record(case, self._subject(case, command["subject_bsn"], "subject_bsn"))
        self._change(record, lambda: record.withdraw_consent(recorded_by=command["agency"]))
        return record

    def lodge_objection(self, command: dict[str, Any]) -> ConsentRecord:
        """The subject's "stop discussing my case"; repeat-safe by ``objection_id``."""
        case = self._case_for(command["case_id"], command["agency"])
        subject = self._subject(case, command["subject_bsn"], "subject_bsn")
        record = self._consent_record(case, subject)
        objection_id: UUID = command.get("objection_id") or uuid4()
        reason = self.seal(KeyScope(case.case_id, subject), command.get("reason"))
        self._change(record, lambda: record.lodge_objection(objection_id, reason, command["agency"]))
        return record

    def withdraw_objection(self, command: dict[str, Any]) -> ConsentRecord:
        case = self._case_for(command["case_id"], command["agency"], open_only=False)
        record = self._consent_record(case, self._subject(case, command["subject_bsn"], "subject_bsn"))
        if record.objection_id is None and command["objection_id"] in record.withdrawn_objections:
            return record  # a repeated command changes nothing
        self._change(record, lambda: record.withdraw_objection(command["objection_id"], command["agency"]))
        return record

    def record_safety_override(self, command: dict[str, Any]) -> SafetyOverride:
        """A professional's override of an objection for the safety of others; repeat-safe."""
        case = self._case_for(command["case_id"], command["agency"])
        override_id: UUID = command.get("override_id") or uuid4()
        existing = self._find_override(override_id)
        if existing is not None:
            if existing.case_id != case.case_id:
                raise Conflict(
                    "override_exists", "an override with this id exists in another case", "override_id"
                )
            return existing
        subjects = tuple(self._subject(case, bsn, "subject_bsns") for bsn in command["subject_bsns"])
        for code in command["categories"]:
            if code not in self.catalogue.categories:
                raise InvalidRequest("unknown_category", f"unknown data category {code}", "categories")
        for agency in command["recipients"]:
            if not case.takes_part(agency):
                raise InvalidRequest(
                    "not_a_participant", f"{agency} does not take part in the case", "recipients"
                )
        scope = KeyScope(case.case_id)
        deferral = command.get("deferral")
        with domain_refusals():
            override = SafetyOverride.record(
                override_id=override_id,
                case_id=case.case_id,
                scope=OverrideScope(subjects, tuple(command["categories"]), tuple(command["recipients"])),
                ground=command["ground"],
                grounds=self.catalogue.safety_override_grounds,
                reasons=self.seal(scope, command["reasons"]),
                recorded_by={"agency": command["agency"], "function": command["function"]},
                ends_on=command["ends_on"],
                explanation=self.seal(scope, command["explanation"]),
                deferral=None
                if deferral is None
                else {"reason": self.seal(scope, deferral["reason"]), "review_on": deferral["review_on"]},
                catalogue_version=self.catalogue.version,
                today=datetime.now(UTC).date(),
            )
        self.save(override)
        return override

    def end_safety_override(self, command: dict[str, Any]) -> SafetyOverride:
        override = self._find_override(command["override_id"])
        if override is None:
            raise NotFound("unknown_override", "no safety override with this id", "override_id")
        self._case_for(override.case_id, command["agency"], open_only=False)
        if override.ended:
            return override  # a repeated command changes nothing
        reasons = self.catalogue.safety_override_end_reasons
        self._change(override, lambda: override.end(command["reason_code"], reasons, command["agency"]))
        return override

    def _find_override(self, override_id: UUID) -> SafetyOverride | None:
        try:
            return self.repository.get(override_id)
        except AggregateNotFoundError:
            return None

    def _subject(self, case: CaseView, bsn: str, field: str) -> str:
        subject = pseudonymise(bsn, self.settings.pseudonym_secret)
        if subject not in case.subjects:
            raise InvalidRequest("not_a_subject", "this person is not a data subject of the case", field)
        return subject

    def _change(self, aggregate: Any, change: Any) -> None:
        with domain_refusals():
            change()
        self.save(aggregate)

    def _case_for(self, case_id: Any, agency: str, open_only: bool = True) -> CaseView:
        case = self.cases.get(case_id)
        if case is None:
            raise NotFound("unknown_case", "no case with this id (yet)", "case_id")
        if not case.takes_part(agency):
            raise NotAuthorised("not_a_participant", "your agency does not take part in this case", "agency")
        if open_only and not case.is_open:
            raise Conflict("case_not_open", f"the case is {case.status}", "case_id")
        return case

    def _consent_record(self, case: CaseView, subject: str) -> ConsentRecord:
        try:
            return self.repository.get(consent_record_id(case.case_id, subject))
        except AggregateNotFoundError:
            return ConsentRecord(case_id=case.case_id, subject=subject)
