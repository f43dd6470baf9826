"""A data subject's say over their data in one case: consent given and withdrawn, objection
lodged and withdrawn; and the safety override a professional records when the safety of others
justifies sharing despite an objection.

Pure domain. One ``ConsentRecord`` per subject and case (its id derives from both), so the
record of a child is never the record of a sibling; a ``SafetyOverride`` names the subjects it
covers one by one.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate, event

from shared.caseview import CaseView
from shared.errors import DomainError, Refusal
from shared.sealed import Sealed

CONSENT_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/consent-records")
SUBJECT_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/case-subjects")
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
        #: Objections to one agency's part in the case, in force: agency -> objection id.
        self.agency_objections: dict[str, UUID] = {}

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

    def object_to_agency(self, objection_id: UUID, agency: str, recorded_by: str) -> bool:
        """ "Stop sharing about me from or to this agency": the other agencies go on. Repeat-safe
        by ``objection_id``: False when already on record; one such objection per agency."""
        if self.agency_objections.get(agency) == objection_id:
            return False
        if agency in self.agency_objections:
            raise ObjectionExistsError("the subject's objection to this agency is already on record")
        self._objection_to_agency_lodged(
            objection_id=objection_id,
            case_id=self.case_id,
            subject=self.subject,
            agency=agency,
            recorded_by=recorded_by,
        )
        return True

    @event("ObjectionToAgencyLodged")
    def _objection_to_agency_lodged(
        self, objection_id: UUID, case_id: UUID, subject: str, agency: str, recorded_by: str
    ) -> None:
        self.agency_objections = {**self.agency_objections, agency: objection_id}

    def agency_objection_in_force(self, objection_id: UUID) -> bool:
        return objection_id in self.agency_objections.values()

    def end_agency_objection(self, objection_id: UUID, ended_by: str, why: str) -> None:
        """The objection to one agency ends: the subject withdrew it (``withdrawn``) or the
        agency refused it on a stated ground (``refused``); shares about the subject from and to
        that agency are weighed again as before."""
        if why not in AGENCY_OBJECTION_ENDINGS:
            raise InvalidConsentError(f"why is one of {', '.join(AGENCY_OBJECTION_ENDINGS)}", "why")
        agency = next((a for a, o in self.agency_objections.items() if o == objection_id), None)
        if agency is None:
            raise NoSuchObjectionError(
                "no objection to an agency with this id is in force for the subject", "objection_id"
            )
        self._objection_to_agency_ended(
            objection_id=objection_id,
            case_id=self.case_id,
            subject=self.subject,
            agency=agency,
            ended_by=ended_by,
            why=why,
        )

    @event("ObjectionToAgencyEnded")
    def _objection_to_agency_ended(
        self, objection_id: UUID, case_id: UUID, subject: str, agency: str, ended_by: str, why: str
    ) -> None:
        self.agency_objections = {a: o for a, o in self.agency_objections.items() if o != objection_id}


#: How an objection to one agency's part ends: withdrawn by the subject (or their
#: representative), or refused by the agency in its answer, on a stated ground.
AGENCY_OBJECTION_ENDINGS = ("withdrawn", "refused")


def acts_for(case: CaseView, subject: str, representative: str) -> bool:
    """Whether ``representative`` may act for ``subject`` in ``case``: the case's facts say the
    subject is a minor and name this person as their legal representative. Checked at every act,
    so acting stops once the facts no longer say minor (or name someone else)."""
    facts = case.subjects.get(subject)
    return (
        facts is not None
        and facts.minor
        and facts.represented_by == representative
        and subject != representative
    )


def subject_reference(case_id: UUID, subject: str) -> UUID:
    """How the page and the citizen API name one subject of one case without naming the person:
    a minor's representative acts for the minor by the case and this reference. Different in
    every case, and nobody without the subject's pseudonym (a keyed HMAC) can compute it."""
    return uuid5(SUBJECT_NAMESPACE, f"{case_id}/{subject}")


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


# -- the citizen's requests ---------------------------------------------------------------------
#: What a citizen can ask: object (to the case, or to one agency's part), withdraw a consent, and
#: the rights of the AVG: correction (art. 16), erasure (art. 17), restriction (art. 18), access
#: (art. 15); or a question in their own words.
REQUEST_KINDS = (
    "objection",
    "consent_withdrawal",
    "correction",
    "erasure",
    "restriction",
    "access",
    "question",
)
#: How an agency answers a request.
REQUEST_OUTCOMES = ("granted", "partly_granted", "refused")
#: Requests that take effect at once through the consent paths; the others wait for an answer.
IMMEDIATE_KINDS = ("objection", "consent_withdrawal")
#: The law's clock (AVG art. 12(3)): one month from receipt, extended once by at most two.
ANSWER_MONTHS = 1
MAX_EXTENSION_MONTHS = 2
#: The responsible agency is reminded this many days before the deadline.
REMINDER_DAYS = 7
#: The deadline is counted in calendar months where the citizen and the agencies live.
LOCAL_TIME = ZoneInfo("Europe/Amsterdam")
REQUEST_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/citizen-requests")


class RequestError(DomainError):
    """A rule of a citizen's request was broken."""

    code = "request_rule"


class InvalidRequestKindError(RequestError):
    code = "invalid_request_kind"


class ExtensionWithoutReasonError(RequestError):
    code = "extension_reason_required"


class InvalidExtensionError(RequestError):
    code = "invalid_extension"


class ExtendedAlreadyError(RequestError):
    code = "extended_already"
    refusal = Refusal.CONFLICT


class ExtensionTooLateError(RequestError):
    code = "extension_too_late"
    refusal = Refusal.CONFLICT


class RequestClosedError(RequestError):
    code = "request_closed"
    refusal = Refusal.CONFLICT


class InvalidAnswerError(RequestError):
    code = "invalid_answer"


class CorrectionNotRunError(RequestError):
    """A correction request answered granted (or partly) before any correction was run: rule 6
    says the correction reaches everyone the data went to, so it is run first (``correct_share``
    with ``in_answer_to``), or the agency states that nothing of it was shared through Keten."""

    code = "correction_not_run"
    refusal = Refusal.CONFLICT


class NotACorrectionRequestError(RequestError):
    code = "not_a_correction_request"
    refusal = Refusal.CONFLICT


def add_months(day: date, months: int) -> date:
    """``day`` plus calendar months; the last day of a shorter month where ``day`` has none
    (31 January plus one month is 28 or 29 February)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def local_date(moment: datetime) -> date:
    """The calendar day in the Netherlands at ``moment`` (an aware time)."""
    return moment.astimezone(LOCAL_TIME).date()


def answer_deadline(received_at: datetime) -> date:
    """The last day to answer a request received at ``received_at``: one calendar month later,
    counted from the day of receipt in Europe/Amsterdam (AVG art. 12(3))."""
    return add_months(local_date(received_at), ANSWER_MONTHS)


def citizen_request_id(subject: str, client_request_id: UUID) -> UUID:
    """One request per citizen and client request id: a repeated submission is the same one."""
    return uuid5(REQUEST_NAMESPACE, f"{subject}/{client_request_id}")


class CitizenRequest(Aggregate):
    """A citizen's request about one case, to the agency that must answer it, on the law's
    clock: received (deadline set), extended once with a reason, answered, overdue, withdrawn.

    The citizen's own words and the agency's reasons are ``Sealed`` under the subject's key:
    purged with the subject's records, while the request's dates and outcome stay."""

    @event("CitizenRequestReceived")
    def __init__(
        self,
        case_id: UUID,
        subject: str,
        kind: str,
        agency: str,
        text: Sealed | None,
        received_at: datetime,
        due_on: date,
        client_request_id: UUID,
        representative: str | None = None,
        agency_named: bool = False,
    ):
        self.case_id = case_id
        self.subject = subject
        self.kind = kind
        self.agency = agency
        #: The pseudonym of the minor's legal representative who submitted it for the subject;
        #: None when the subject submitted it (and in every request stored before).
        self.representative = representative
        #: The citizen named the agency (False: it is the record holder by default). An objection
        #: that names one is an objection to that agency's part only.
        self.agency_named = agency_named
        self.received_at = received_at
        self.due_on = due_on
        self.first_due_on = due_on
        self.status = "open"
        self.extended = False
        self.reminded_for: date | None = None
        self.corrections: tuple[UUID, ...] = ()

    @classmethod
    def receive(
        cls,
        *,
        case_id: UUID,
        subject: str,
        kind: str,
        agency: str,
        text: Sealed | None,
        received_at: datetime,
        client_request_id: UUID,
        representative: str | None = None,
        agency_named: bool = False,
    ) -> CitizenRequest:
        """A request of ``subject``'s, or of their legal ``representative`` for them (a minor)."""
        if kind not in REQUEST_KINDS:
            raise InvalidRequestKindError(f"kind is one of {', '.join(REQUEST_KINDS)}", "kind")
        return cls._create(
            cls.CitizenRequestReceived,  # type: ignore[attr-defined]
            id=citizen_request_id(subject, client_request_id),
            case_id=case_id,
            subject=subject,
            kind=kind,
            agency=agency,
            text=text,
            received_at=received_at,
            due_on=answer_deadline(received_at),
            client_request_id=client_request_id,
            representative=representative,
            agency_named=agency_named,
        )

    @property
    def is_open(self) -> bool:
        """Still waiting for the agency's answer (overdue ones too)."""
        return self.status in ("open", "overdue")

    def extend(self, *, agency: str, until: date, reason: Sealed | None, today: date) -> None:
        """The agency needs more time: once, by at most two months after the first deadline,
        with a reason the citizen is told, and only within the first month."""
        if reason is None:
            raise ExtensionWithoutReasonError("an extension states its reason for the citizen", "reason")
        self._check_open()
        if self.extended:
            raise ExtendedAlreadyError("a request is extended once only", "until")
        if today > self.first_due_on:
            raise ExtensionTooLateError("an extension is told to the citizen within the first month", "until")
        if not self.due_on < until <= add_months(self.first_due_on, MAX_EXTENSION_MONTHS):
            raise InvalidExtensionError(
                f"an extension ends after the deadline and within {MAX_EXTENSION_MONTHS} months of it",
                "until",
            )
        self._extended(case_id=self.case_id, subject=self.subject, agency=agency, due_on=until, reason=reason)

    @event("CitizenRequestExtended")
    def _extended(
        self, case_id: UUID, subject: str, agency: str, due_on: date, reason: Sealed | None
    ) -> None:
        self.due_on = due_on
        self.extended = True
        if self.status == "overdue":
            self.status = "open"

    def answer(
        self,
        *,
        agency: str,
        outcome: str,
        reason: Sealed | None,
        answered_at: datetime,
        nothing_shared: bool = False,
    ) -> None:
        """The agency's answer: granted, partly granted or refused, with its reason; an overdue
        request can still be answered (late). A correction request is granted (or partly) only
        after a correction was run for it (rule 6), or with the agency's statement that nothing
        of it was shared through Keten (``nothing_shared``: there is nobody here to tell)."""
        if outcome not in REQUEST_OUTCOMES:
            raise InvalidAnswerError(f"outcome is one of {', '.join(REQUEST_OUTCOMES)}", "outcome")
        if reason is None:
            raise InvalidAnswerError("an answer states its reason for the citizen", "reason")
        self._check_open()
        if nothing_shared and (self.kind != "correction" or outcome == "refused" or self.corrections):
            raise InvalidAnswerError(
                "nothing_shared goes with a correction request granted without a correction run here",
                "nothing_shared",
            )
        if self.kind == "correction" and outcome != "refused" and not self.corrections and not nothing_shared:
            raise CorrectionNotRunError(
                "run the correction first (correct_share with in_answer_to: this request), or say "
                "nothing_shared when none of the data was shared through Keten",
                "outcome",
            )
        self._answered(
            case_id=self.case_id,
            subject=self.subject,
            agency=agency,
            outcome=outcome,
            reason=reason,
            late=local_date(answered_at) > self.due_on,
            nothing_shared=nothing_shared,
        )

    @event("CitizenRequestAnswered")
    def _answered(
        self,
        case_id: UUID,
        subject: str,
        agency: str,
        outcome: str,
        reason: Sealed | None,
        late: bool,
        nothing_shared: bool = False,
    ) -> None:
        self.status = "answered"

    def record_correction(
        self,
        *,
        correction_id: UUID,
        agency: str,
        share_id: UUID,
        reason_code: str,
        categories: tuple[str, ...],
    ) -> bool:
        """A correction run for this correction request (rule 6: data_sharing passed it on to
        everyone the data went to). Once per correction (it reaches each recipient's share);
        False when on record already."""
        if self.kind != "correction":
            raise NotACorrectionRequestError("the request is not a correction request", "in_answer_to")
        if correction_id in self.corrections:
            return False
        self._check_open()
        self._correction_recorded(
            case_id=self.case_id,
            subject=self.subject,
            agency=agency,
            correction_id=correction_id,
            share_id=share_id,
            reason_code=reason_code,
            categories=tuple(categories),
        )
        return True

    @event("CitizenRequestCorrectionRecorded")
    def _correction_recorded(
        self,
        case_id: UUID,
        subject: str,
        agency: str,
        correction_id: UUID,
        share_id: UUID,
        reason_code: str,
        categories: tuple[str, ...],
    ) -> None:
        self.corrections = (*self.corrections, correction_id)

    def withdraw(self, *, representative: str | None = None, in_force: bool = False) -> None:
        """The citizen (or the minor's legal ``representative``) takes the request back. An
        answered request cannot be taken back, except one whose effect is still ``in_force``
        (an objection to one agency's part, granted: withdrawing it ends the objection)."""
        if not in_force:
            self._check_open()
        elif self.status == "withdrawn":
            raise RequestClosedError("the request is withdrawn", "request_id")
        self._withdrawn(case_id=self.case_id, subject=self.subject, representative=representative)

    @event("CitizenRequestWithdrawn")
    def _withdrawn(self, case_id: UUID, subject: str, representative: str | None = None) -> None:
        self.status = "withdrawn"

    def remind(self, today: date) -> bool:
        """Reminds the agency once per deadline, from ``REMINDER_DAYS`` before it; True if now."""
        if self.status != "open" or self.reminded_for == self.due_on:
            return False
        if today < self.due_on - timedelta(days=REMINDER_DAYS) or today > self.due_on:
            return False
        self._reminded(case_id=self.case_id, agency=self.agency, kind=self.kind, due_on=self.due_on)
        return True

    @event("CitizenRequestReminded")
    def _reminded(self, case_id: UUID, agency: str, kind: str, due_on: date) -> None:
        self.reminded_for = due_on

    def escalate(self, today: date) -> bool:
        """Past its deadline without an answer: the request is overdue; True if it became so now."""
        if self.status != "open" or today <= self.due_on:
            return False
        self._overdue(
            case_id=self.case_id, subject=self.subject, agency=self.agency, kind=self.kind, due_on=self.due_on
        )
        return True

    @event("CitizenRequestOverdue")
    def _overdue(self, case_id: UUID, subject: str, agency: str, kind: str, due_on: date) -> None:
        self.status = "overdue"

    def _check_open(self) -> None:
        if not self.is_open:
            raise RequestClosedError(f"the request is {self.status}", "request_id")
