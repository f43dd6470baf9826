"""Use cases of the consent service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from services.consent.domain import ConsentError, ConsentRecord, consent_record_id
from shared.application import KetenApplication
from shared.casefacts import CaseFacts, CaseView
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.errors import Conflict, InvalidRequest, NotAuthorised, NotFound
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
        try:
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
        except ConsentError as error:
            raise InvalidRequest(error.code, str(error), error.field) from None
        self.save(record)
        return record

    def _case_for(self, case_id: Any, agency: str) -> CaseView:
        case = self.cases.get(case_id)
        if case is None:
            raise NotFound("unknown_case", "no case with this id (yet)", "case_id")
        if not case.takes_part(agency):
            raise NotAuthorised("not_a_participant", "your agency does not take part in this case", "agency")
        if not case.is_open:
            raise Conflict("case_not_open", f"the case is {case.status}", "case_id")
        return case

    def _consent_record(self, case: CaseView, subject: str) -> ConsentRecord:
        try:
            return self.repository.get(consent_record_id(case.case_id, subject))
        except AggregateNotFoundError:
            return ConsentRecord(case_id=case.case_id, subject=subject)
