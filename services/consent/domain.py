"""A data subject's say over their data in one case: consent given and withdrawn, objection
lodged and withdrawn; and the safety override a professional records when the safety of others
justifies sharing despite an objection.

Pure domain. One ``ConsentRecord`` per subject and case (its id derives from both), so the
record of a child is never the record of a sibling; a ``SafetyOverride`` names the subjects it
covers one by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from shared.errors import DomainError, Refusal
from shared.sealed import Sealed

CONSENT_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/consent-records")
GIVEN_HOW = ("in_person", "written", "digital")


class ConsentError(DomainError):
    """A consent, objection or safety override rule was broken."""

    code = "consent_rule"


class InvalidConsentError(ConsentError):
    code = "invalid_consent"


class NoConsentError(ConsentError):
    code = "no_consent"


class ObjectionExistsError(ConsentError):
    code = "objection_exists"
    refusal = Refusal.CONFLICT


class NoSuchObjectionError(ConsentError):
    code = "no_such_objection"
    refusal = Refusal.NOT_FOUND


class InvalidOverrideError(ConsentError):
    code = "invalid_override"


class OverrideEndedError(ConsentError):
    code = "override_ended"
    refusal = Refusal.CONFLICT


def consent_record_id(case_id: UUID, subject: str) -> UUID:
    return uuid5(CONSENT_NAMESPACE, f"{case_id}/{subject}")


@dataclass(frozen=True)
class SpecificConsent:
    """One consent the subject gave: for one purpose, these categories, to these recipients,
    until a date, after the notice of this version."""

    purpose: str
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    valid_until: date
    notice_version: str


class ConsentRecord(Aggregate):
    """What one subject agreed to (and objected to) in one case."""

    @event("ConsentRecordOpened")
    def __init__(self, case_id: UUID, subject: str):
        self.case_id = case_id
        self.subject = subject
        self.consents: tuple[SpecificConsent, ...] = ()
        self.objection_id: UUID | None = None
        self.withdrawn_objections: tuple[UUID, ...] = ()

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
        given = SpecificConsent(purpose, tuple(categories), tuple(recipients), valid_until, notice_version)
        self.consents = (*self.consents, given)

    def withdraw_consent(self, recorded_by: str) -> None:
        """Withdraws every consent the subject gave in the case."""
        if not self.consents:
            raise NoConsentError("the subject has no consent on record in this case")
        self._consent_withdrawn(case_id=self.case_id, subject=self.subject, recorded_by=recorded_by)

    @event("ConsentWithdrawn")
    def _consent_withdrawn(self, case_id: UUID, subject: str, recorded_by: str) -> None:
        self.consents = ()

    def lodge_objection(self, objection_id: UUID, reason: Sealed | None, recorded_by: str) -> bool:
        """ "Stop discussing my case". Repeat-safe by ``objection_id``: False when already on record."""
        if self.objection_id == objection_id:
            return False
        if self.objection_id is not None:
            raise ObjectionExistsError("the subject's objection in this case is already on record")
        self._objection_lodged(
            objection_id=objection_id,
            case_id=self.case_id,
            subject=self.subject,
            reason=reason,
            recorded_by=recorded_by,
        )
        return True

    @event("ObjectionLodged")
    def _objection_lodged(
        self, objection_id: UUID, case_id: UUID, subject: str, reason: Sealed | None, recorded_by: str
    ) -> None:
        self.objection_id = objection_id

    def withdraw_objection(self, objection_id: UUID, recorded_by: str) -> None:
        """The subject takes back the objection in force; shares may be considered again."""
        if self.objection_id != objection_id:
            raise NoSuchObjectionError(
                "no objection with this id is in force for the subject", "objection_id"
            )
        self._objection_withdrawn(
            objection_id=objection_id, case_id=self.case_id, subject=self.subject, recorded_by=recorded_by
        )

    @event("ObjectionWithdrawn")
    def _objection_withdrawn(self, objection_id: UUID, case_id: UUID, subject: str, recorded_by: str) -> None:
        self.objection_id = None
        self.withdrawn_objections = (*self.withdrawn_objections, objection_id)


#: A safety override must be reviewed: it runs at most this long.
OVERRIDE_MAX_DAYS = 366


@dataclass(frozen=True)
class OverrideScope:
    """What a safety override lets through despite an objection: these subjects' data, of these
    categories, to these agencies."""

    subjects: tuple[str, ...]
    categories: tuple[str, ...]
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Professional:
    """Who took a decision: an agency and the professional's function there, never their name.
    The function is free text, so it is sealed under the case's key (plain text in an override
    stored before it was sealed)."""

    agency: str
    function: Sealed | str


@dataclass(frozen=True)
class NoticeDeferral:
    """Telling the subjects now would endanger someone: their notices of shares under the
    override are held until ``review_on``, for the (sealed) ``reason``."""

    reason: Sealed | None
    review_on: date


class SafetyOverride(Aggregate):
    """A professional's recorded decision that the safety of others justifies sharing despite an
    objection: who decided, on what ground, why, within which scope, until when, and the
    explanation owed to the subjects (now, or when the deferral of their notifications ends).

    The stored ``SafetyOverrideRecorded`` keeps ``recorded_by`` and ``deferral`` as plain JSON
    objects (their shape since the first override was stored); ``record`` takes them as value
    objects, and the override holds ``recorded_by`` as a ``Professional``."""

    @event("SafetyOverrideRecorded")
    def __init__(
        self,
        case_id: UUID,
        subjects: tuple[str, ...],
        categories: tuple[str, ...],
        recipients: tuple[str, ...],
        ground: str,
        reasons: Sealed | None,
        recorded_by: dict[str, Sealed | str],
        ends_on: date,
        explanation: Sealed | None,
        deferral: dict[str, object] | None,
        catalogue_version: str,
    ):
        self.case_id = case_id
        self.scope = OverrideScope(tuple(subjects), tuple(categories), tuple(recipients))
        self.recorded_by = Professional(str(recorded_by["agency"]), recorded_by["function"])
        self.ends_on = ends_on
        self.ended = False

    @classmethod
    def record(
        cls,
        *,
        override_id: UUID,
        case_id: UUID,
        scope: OverrideScope,
        ground: str,
        grounds: Iterable[str],
        reasons: Sealed | None,
        recorded_by: Professional,
        ends_on: date,
        explanation: Sealed | None,
        deferral: NoticeDeferral | None,
        catalogue_version: str,
        today: date,
    ) -> SafetyOverride:
        """Records an override after checking its ground, scope, period and reasons, and that a
        deferral of the subjects' notices is reviewed within the override's period."""
        if ground not in set(grounds):
            raise InvalidOverrideError("unknown safety override ground", "ground")
        if not scope.subjects or not scope.categories or not scope.recipients:
            raise InvalidOverrideError("an override names its subjects, categories and recipients", "scope")
        if not today < ends_on <= today + timedelta(days=OVERRIDE_MAX_DAYS):
            raise InvalidOverrideError(
                f"an override ends after today and within {OVERRIDE_MAX_DAYS} days", "ends_on"
            )
        if reasons is None or explanation is None:
            raise InvalidOverrideError("an override states its reasons and the explanation owed", "reasons")
        if deferral is not None and not today < deferral.review_on <= ends_on:
            raise InvalidOverrideError(
                "a deferral is reviewed after today and no later than the override ends",
                "deferral.review_on",
            )
        return cls._create(
            cls.SafetyOverrideRecorded,  # type: ignore[attr-defined]
            id=override_id,
            case_id=case_id,
            subjects=scope.subjects,
            categories=scope.categories,
            recipients=scope.recipients,
            ground=ground,
            reasons=reasons,
            # Stored as plain objects, as they always were (see the class docstring).
            recorded_by={"agency": recorded_by.agency, "function": recorded_by.function},
            ends_on=ends_on,
            explanation=explanation,
            deferral=None
            if deferral is None
            else {"reason": deferral.reason, "review_on": deferral.review_on},
            catalogue_version=catalogue_version,
        )

    def end(self, reason_code: str, reasons: Iterable[str], ended_by: str) -> None:
        """Ends the override before its end date, for one of the catalogue's ``reasons``."""
        if self.ended:
            raise OverrideEndedError("the override has ended already")
        if reason_code not in set(reasons):
            raise InvalidOverrideError("unknown reason to end an override", "reason_code")
        self._ended(case_id=self.case_id, reason_code=reason_code, ended_by=ended_by)

    @event("SafetyOverrideEnded")
    def _ended(self, case_id: UUID, reason_code: str, ended_by: str) -> None:
        self.ended = True
