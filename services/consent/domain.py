"""A data subject's say over their data in one case: consent given and withdrawn.

Pure domain. One ``ConsentRecord`` per subject and case (its id derives from both), so the
record of a child is never the record of a sibling.
"""

from __future__ import annotations

from datetime import date
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from shared.sealed import Sealed

CONSENT_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/consent-records")
GIVEN_HOW = ("in_person", "written", "digital")


class ConsentError(Exception):
    code = "consent_rule"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class InvalidConsentError(ConsentError):
    code = "invalid_consent"


def consent_record_id(case_id: UUID, subject: str) -> UUID:
    return uuid5(CONSENT_NAMESPACE, f"{case_id}/{subject}")


class ConsentRecord(Aggregate):
    """What one subject agreed to (and objected to) in one case."""

    @event("ConsentRecordOpened")
    def __init__(self, case_id: UUID, subject: str):
        self.case_id = case_id
        self.subject = subject
        self.consents: list[dict[str, object]] = []

    @staticmethod
    def create_id(case_id: UUID, subject: str) -> UUID:
        return consent_record_id(case_id, subject)

    def give_consent(
        self,
        *,
        purpose: str,
        categories: tuple[str, ...],
        recipients: tuple[str, ...],
        valid_until: date,
        notice_version: str,
        notice: Sealed | None,
        given_how: str,
        recorded_by: str,
        today: date,
    ) -> None:
        """Specific consent: for one purpose, named categories and recipients, until a date."""
        if valid_until <= today:
            raise InvalidConsentError("consent must be valid until a date in the future", "valid_until")
        if given_how not in GIVEN_HOW:
            raise InvalidConsentError(f"given_how is one of {', '.join(GIVEN_HOW)}", "given_how")
        self._consent_given(
            case_id=self.case_id,
            subject=self.subject,
            purpose=purpose,
            categories=tuple(categories),
            recipients=tuple(recipients),
            valid_until=valid_until,
            notice_version=notice_version,
            notice=notice,
            given_how=given_how,
            recorded_by=recorded_by,
        )

    @event("ConsentGiven")
    def _consent_given(
        self,
        case_id: UUID,
        subject: str,
        purpose: str,
        categories: tuple[str, ...],
        recipients: tuple[str, ...],
        valid_until: date,
        notice_version: str,
        notice: Sealed | None,
        given_how: str,
        recorded_by: str,
    ) -> None:
        self.consents.append(
            {
                "purpose": purpose,
                "categories": tuple(categories),
                "recipients": tuple(recipients),
                "valid_until": valid_until,
                "notice_version": notice_version,
            }
        )
