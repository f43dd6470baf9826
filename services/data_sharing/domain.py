"""Share decisions: may this agency share these data about this person with that agency?

Pure domain. ``decide`` weighs one request for one recipient against what is known of the case
(``CaseView``) and what the subject said (``SubjectSay``: consents, objection, safety overrides),
and returns a ``Decision`` with a reason code; ``decide_per_category`` weighs each category of the
request on its own, so that one category the rules refuse does not stop the others. The
application records the allowed categories as one ``Share`` (``DataShared``) and each refusal as
a ``RefusedShare`` (``ShareRefused``) with its own reason.
Every decision is an event, allowed or refused. A share's content can later be corrected
(``ShareCorrected``) and its erasure passed on to its recipient (``ErasurePassedOn``): rule 6
of docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from shared.caseview import AgreementFacts, CaseView, ContactPointFacts
from shared.catalogue import Catalogue, Provision
from shared.errors import DomainError, Refusal
from shared.sealed import Sealed

SHARE_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/shares")


def share_id(request_id: UUID, to_agency: str, refused_category: str | None = None) -> UUID:
    """One decision per request and recipient; a repeated request finds its decision again.
    Where part of a request is refused beside the recipient's decision (its share, or its first
    refusal), that part's refusal is named by its first category."""
    part = f"/{refused_category}" if refused_category is not None else ""
    return uuid5(SHARE_NAMESPACE, f"{request_id}/{to_agency}{part}")


@dataclass(frozen=True)
class ShareRequest:
    """One sender's request to share with one recipient: what ``decide`` weighs."""

    request_id: UUID
    case_id: UUID
    subject: str
    from_agency: str
    to_agency: str
    categories: tuple[str, ...]
    purpose: str
    form: str = "written"
    meeting_id: str | None = None
    direction: str = "push"
    #: Per special or criminal category, the ground the sender relies on.
    special_grounds: Mapping[str, str] = field(default_factory=dict)
    #: The other subjects of the case the content is also about.
    also_about: tuple[str, ...] = ()


@dataclass(frozen=True)
class GivenConsent:
    """A consent the subject gave: for one purpose, these categories, these recipients, until
    a date."""

    purpose: str
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    valid_until: date

    def covers(self, request: ShareRequest, today: date) -> bool:
        return (
            self.purpose == request.purpose
            and request.to_agency in self.recipients
            and set(request.categories) <= set(self.categories)
            and self.valid_until >= today
        )


@dataclass(frozen=True)
class SafetyOverride:
    """A safety override recorded in the case, as far as a decision needs it: its scope
    (subjects, categories, recipients) and its end (not its reasons)."""

    override_id: UUID
    subjects: tuple[str, ...]
    categories: tuple[str, ...]
    recipients: tuple[str, ...]
    ends_on: date
    ended: bool = False

    def holds(self, request: ShareRequest, today: date) -> bool:
        """In force, and its scope holds the share: the subject, every category and the
        recipient (an override about one child is none about a sibling)."""
        return (
            not self.ended
            and self.ends_on >= today
            and request.subject in self.subjects
            and set(request.categories) <= set(self.categories)
            and request.to_agency in self.recipients
        )


@dataclass(frozen=True)
class SubjectSay:
    """What the subject said in the case, as far as a share decision needs it: their consents,
    their objection (if one is in force), and the safety overrides recorded in the case."""

    consents: tuple[GivenConsent, ...] = ()
    objection_id: str | None = None
    overrides: tuple[SafetyOverride, ...] = ()
    #: The agencies whose part the subject objected to (no shares from or to them).
    objected_agencies: frozenset[str] = frozenset()

    def consent_covers(self, request: ShareRequest, today: date) -> bool:
        return any(consent.covers(request, today) for consent in self.consents)

    def override_for(self, request: ShareRequest, today: date) -> UUID | None:
        """The id of a safety override in force whose scope holds this share, if any."""
        for override in self.overrides:
            if override.holds(request, today):
                return override.override_id
        return None


@dataclass(frozen=True)
class Decision:
    """Allowed or refused, with the reason code (``allowed`` when allowed)."""

    allowed: bool
    reason_code: str
    #: What the plain-language reason names: agency ids and category codes, nothing personal.
    reason_details: Mapping[str, str] = field(default_factory=dict)
    sender_ground: str | None = None
    recipient_ground: str | None = None
    #: The safety override the share proceeds under despite the subject's objection.
    override_id: UUID | None = None
    #: The categories the decision is about (``decide_per_category``): those shared, or those
    #: refused for this reason; empty from ``decide``, which is about the whole request.
    categories: tuple[str, ...] = ()
    #: Whose say refused it, when the content is also about others than the request's subject.
    subject: str | None = None


def refused(code: str, **details: str) -> Decision:
    return Decision(False, code, details)


def decide_per_category(
    request: ShareRequest,
    case: CaseView,
    say: SubjectSay,
    catalogue: Catalogue,
    today: date,
    also_about: Mapping[str, SubjectSay] | None = None,
) -> tuple[Decision, ...]:
    """Each category of the request weighed on its own by ``decide``, for the subject and for
    every other subject the content is ``also_about`` (their say: objection, consent): a
    category goes only when it may go for each of them. The allowed categories come together in
    one allowed decision (first), then one refusal per subject and reason, naming its
    categories. A rule about the whole request (an inactive case, another purpose, an objection
    with no override) refuses every category alike, and so gives one refusal for all of them."""
    says = {request.subject: say, **(also_about or {})}
    alone: list[tuple[str, Decision]] = []
    for code in request.categories:
        per_subject = [
            replace(
                decide(
                    replace(request, subject=subject, categories=(code,)), case, their_say, catalogue, today
                ),
                subject=subject,
            )
            for subject, their_say in says.items()
        ]
        refusal = next((d for d in per_subject if not d.allowed), None)
        if refusal is not None:
            alone.append((code, refusal))
        else:
            override_id = next((d.override_id for d in per_subject if d.override_id is not None), None)
            alone.append((code, replace(per_subject[0], override_id=override_id, subject=None)))
    allowed = [(code, decision) for code, decision in alone if decision.allowed]
    decisions: list[Decision] = []
    if allowed:
        first = allowed[0][1]
        override_id = next((d.override_id for _, d in allowed if d.override_id is not None), None)
        decisions.append(
            replace(first, override_id=override_id, categories=tuple(code for code, _ in allowed))
        )
    # Refusals about the same subject, for the same reason naming the same agencies and
    # category, are one decision.
    RefusalKey = tuple[str | None, str, tuple[tuple[str, str], ...]]
    grouped: dict[RefusalKey, list[str]] = {}
    by_key: dict[RefusalKey, Decision] = {}
    for code, decision in alone:
        if decision.allowed:
            continue
        subject = None if decision.subject == request.subject else decision.subject
        key = (subject, decision.reason_code, tuple(sorted(decision.reason_details.items())))
        grouped.setdefault(key, []).append(code)
        by_key.setdefault(key, replace(decision, subject=subject))
    decisions.extend(replace(by_key[key], categories=tuple(codes)) for key, codes in grouped.items())
    return tuple(decisions)


def decide(
    request: ShareRequest, case: CaseView, say: SubjectSay, catalogue: Catalogue, today: date
) -> Decision:
    """The rules of docs/architecture.md, in order; the first that fails decides the refusal. The reason's
    text is in ``shared/reasons.yaml``, by code."""
    # Rule 1: an active case (a case stopped by objections still decides: an override may hold).
    if case.status == "registered":
        return refused("case_not_active")
    if not case.is_open:
        return refused("case_closed")
    sender = case.participants.get(request.from_agency)
    recipient = case.participants.get(request.to_agency)
    if sender is None:
        return refused("sender_not_participant", agency=request.from_agency)
    if recipient is None:
        return refused("recipient_not_participant", agency=request.to_agency)
    if request.to_agency == request.from_agency:
        return refused("same_agency")
    if request.purpose != case.purpose:
        return refused("purpose_mismatch")
    if request.subject not in case.subjects:
        return refused("not_a_subject")
    # Rule 4 before the others: a share tried despite an objection is what the citizen must see.
    override_id = None
    if say.objection_id is not None:
        override_id = say.override_for(request, today)
        if override_id is None:
            return refused("objection_lodged")
    # Rule 4 for an objection to one agency's part: no shares from or to that agency.
    objected = next((a for a in (request.from_agency, request.to_agency) if a in say.objected_agencies), None)
    if objected is not None and override_id is None:
        override_id = say.override_for(request, today)
        if override_id is None:
            return refused("objection_to_agency", agency=objected)
    # Rule 1: the sender's own ground; consent is none where the citizen depends on the sender.
    sending_agency = catalogue.agencies[request.from_agency]
    if sender.legal_ground == "consent" and sending_agency.citizen_depends_on_it:
        return refused("consent_not_free", agency=request.from_agency)
    # Rule 2: only what the data agreement lets the sender bring and the recipient receive.
    sender_agreement = case.agreement.get(request.from_agency, AgreementFacts())
    recipient_agreement = case.agreement.get(request.to_agency, AgreementFacts())
    for code in request.categories:
        if code not in sender_agreement.bring:
            return refused("category_not_brought", agency=request.from_agency, category=code)
        if code not in recipient_agreement.receive:
            return refused("category_not_agreed", agency=request.to_agency, category=code)
    # Rule 3: special and criminal categories and the BSN need the sender's own recorded ground.
    for code in request.categories:
        category = catalogue.categories[code]
        if category.needs_own_ground:
            ground = request.special_grounds.get(code)
            if ground is None or ground not in sending_agency.special_grounds:
                return refused("special_category_without_ground", agency=request.from_agency, category=code)
            if ground == "explicit_consent" and (
                sending_agency.citizen_depends_on_it or not say.consent_covers(request, today)
            ):
                return refused("no_valid_consent", agency=request.from_agency, recipient=request.to_agency)
    if sender.legal_ground == "consent" and not say.consent_covers(request, today):
        return refused("no_valid_consent", agency=request.from_agency, recipient=request.to_agency)
    return Decision(
        True,
        "allowed",
        sender_ground=sender.legal_ground,
        recipient_ground=recipient.legal_ground,
        override_id=override_id,
    )


@dataclass(frozen=True)
class CitedProvisions:
    """The provisions of law a decision rests on, as the catalogue names them when it is made:
    the sender's ground for the purpose, and for each special category the special ground the
    sender relied on. Stored in the decision, so a later catalogue changes no past decision."""

    sender: Provision | None = None
    special: Mapping[str, Provision] = field(default_factory=dict)

    def stored(self) -> tuple[dict[str, str] | None, dict[str, dict[str, str]]]:
        """As the decision events store them: plain mappings of law and article."""
        return (
            _provision_row(self.sender) if self.sender else None,
            {code: _provision_row(provision) for code, provision in self.special.items()},
        )


def _provision_row(provision: Provision) -> dict[str, str]:
    return {"law": provision.law, "article": provision.article}


def cite_provisions(request: ShareRequest, case: CaseView, catalogue: Catalogue) -> CitedProvisions:
    """What the sender's grounds rest on (nothing for a sender not at the table): the Ombudsman
    found agencies that could not say on which provision they had shared."""
    sender = case.participants.get(request.from_agency)
    if sender is None:
        return CitedProvisions()
    special: dict[str, Provision] = {}
    for code in request.categories:
        ground = request.special_grounds.get(code)
        provision = catalogue.provision(request.from_agency, request.purpose, ground) if ground else None
        if provision is not None:
            special[code] = provision
    return CitedProvisions(
        catalogue.provision(request.from_agency, request.purpose, sender.legal_ground), special
    )


class NotSenderOrRecordHolderError(DomainError):
    """Only the agency that made a share, or the case's record holder, corrects its content."""

    code = "not_sender_or_record_holder"
    refusal = Refusal.NOT_AUTHORISED


class Share(Aggregate):
    """Data that was shared: with whom, what, why, on what ground. What was shared stays on
    record; a correction is recorded beside it, and so is that its erasure was passed on.

    Its events are declared, so that what reads them (the recipients' inbox) reads typed
    attributes; their names and fields are those they have always been stored with."""

    class DataShared(Aggregate.Created):
        """An allowed share, on record: its recipient is told, its subject notified."""

        request_id: UUID
        case_id: UUID
        subject: str
        from_agency: str
        to_agency: str
        categories: tuple[str, ...]
        purpose: str
        sender_ground: str
        recipient_ground: str
        special_grounds: dict[str, str]
        form: str
        meeting_id: str | None
        content: Sealed | None
        direction: str
        #: Stored as the mapping it has always been stored as, its function sealed under the
        #: subject's key (plain text in a share stored before it was sealed); read it as ``contact``.
        contact_point: dict[str, Sealed | str | None]
        catalogue_version: str
        correlation_id: str | None
        override_id: UUID | None = None
        #: The provision the sender's ground rests on, and per special category the special
        #: ground's (``CitedProvisions``), stored as plain mappings; absent before they were.
        provision: dict[str, str] | None = None
        special_provisions: dict[str, dict[str, str]] | None = None
        #: The other subjects the content is also about: each is told.
        also_about: tuple[str, ...] = ()

        @property
        def contact(self) -> ContactPointFacts:
            """The case's contact point when the share was made: whom the citizen asks."""
            return ContactPointFacts(str(self.contact_point["agency"]), self.contact_point.get("function"))

    @event(DataShared)
    def __init__(
        self,
        request_id: UUID,
        case_id: UUID,
        subject: str,
        from_agency: str,
        to_agency: str,
        categories: tuple[str, ...],
        purpose: str,
        sender_ground: str,
        recipient_ground: str,
        special_grounds: dict[str, str],
        form: str,
        meeting_id: str | None,
        content: Sealed | None,
        direction: str,
        contact_point: dict[str, Sealed | str | None],
        catalogue_version: str,
        correlation_id: str | None,
        override_id: UUID | None = None,
        provision: dict[str, str] | None = None,
        special_provisions: dict[str, dict[str, str]] | None = None,
        also_about: tuple[str, ...] = (),
    ):
        self.request_id = request_id
        self.case_id = case_id
        self.subject = subject
        self.from_agency = from_agency
        self.to_agency = to_agency
        self.categories = tuple(categories)
        self.purpose = purpose
        self.content = content
        self.override_id = override_id
        self.correction_ids: tuple[UUID, ...] = ()
        self.erasure_passed_on = False

    @classmethod
    def record(
        cls,
        request: ShareRequest,
        decision: Decision,
        content: Sealed | None,
        contact_point: ContactPointFacts,
        catalogue_version: str,
        correlation_id: str,
        provisions: CitedProvisions | None = None,
    ) -> Share:
        """Puts an allowed decision on record, with its content sealed under the subject's key,
        the case's contact point (its function sealed under the same key) and the provisions of
        law it rests on."""
        if not decision.allowed:
            raise ValueError("a refused decision is recorded as a RefusedShare")
        provision, special_provisions = (provisions or CitedProvisions()).stored()
        return cls(
            request_id=request.request_id,
            case_id=request.case_id,
            subject=request.subject,
            from_agency=request.from_agency,
            to_agency=request.to_agency,
            categories=decision.categories or request.categories,
            purpose=request.purpose,
            sender_ground=decision.sender_ground or "",
            recipient_ground=decision.recipient_ground or "",
            special_grounds=dict(request.special_grounds),
            form=request.form,
            meeting_id=request.meeting_id,
            content=content,
            direction=request.direction,
            contact_point={"agency": contact_point.agency, "function": contact_point.function},
            catalogue_version=catalogue_version,
            correlation_id=correlation_id,
            override_id=decision.override_id,
            provision=provision,
            special_provisions={c: p for c, p in special_provisions.items() if c in decision.categories}
            if decision.categories
            else special_provisions,
            also_about=request.also_about,
        )

    @staticmethod
    def create_id(request_id: UUID, to_agency: str) -> UUID:
        return share_id(request_id, to_agency)

    def check_may_be_corrected_by(self, agency: str, record_holder: str | None) -> None:
        check_may_correct(self.from_agency, agency, record_holder)

    def has_correction(self, correction_id: UUID) -> bool:
        return correction_id in self.correction_ids

    def correct(
        self,
        correction_id: UUID,
        corrected_by: str,
        reason_code: str,
        content: Sealed | None,
        correlation_id: str | None,
        answering: CorrectionAnswer | None = None,
    ) -> None:
        """Records corrected content for the recipient; a correction on record is not repeated.
        ``answering``: the citizen's correction request it was run for, and how it answers it."""
        if self.has_correction(correction_id):
            return
        self._record_correction(
            correction_id=correction_id,
            case_id=self.case_id,
            subject=self.subject,
            from_agency=self.from_agency,
            to_agency=self.to_agency,
            corrected_by=corrected_by,
            reason_code=reason_code,
            content=content,
            correlation_id=correlation_id,
            categories=self.categories,
            in_answer_to=None if answering is None else answering.request_id,
            answer=None if answering is None else answering.answer,
            answer_reason=None if answering is None else answering.reason,
        )

    class ShareCorrected(Aggregate.Event):
        """The share's content corrected: its recipient replaces its copy. Since the citizen's
        requests, it also names the share's ``categories`` and, when it was run for a citizen's
        correction request, that request (``in_answer_to``) and how it answers it; a correction
        stored before has none of these."""

        correction_id: UUID
        case_id: UUID
        subject: str
        from_agency: str
        to_agency: str
        corrected_by: str
        reason_code: str
        content: Sealed | None
        correlation_id: str | None
        categories: tuple[str, ...] = ()
        in_answer_to: UUID | None = None
        answer: str | None = None
        answer_reason: Sealed | None = None

    @event(ShareCorrected)
    def _record_correction(
        self,
        correction_id: UUID,
        case_id: UUID,
        subject: str,
        from_agency: str,
        to_agency: str,
        corrected_by: str,
        reason_code: str,
        content: Sealed | None,
        correlation_id: str | None,
        categories: tuple[str, ...] = (),
        in_answer_to: UUID | None = None,
        answer: str | None = None,
        answer_reason: Sealed | None = None,
    ) -> None:
        self.correction_ids = (*self.correction_ids, correction_id)

    def pass_on_erasure(self, reason: str, purged_at: datetime) -> bool:
        """Tells the recipient to erase its copy, once; False when that is on record already."""
        if self.erasure_passed_on:
            return False
        self._record_erasure_passed_on(
            case_id=self.case_id,
            recipients=(self.to_agency,),
            reason=reason,
            purged_at=purged_at,
            subject=self.subject,
        )
        return True

    class ErasurePassedOn(Aggregate.Event):
        """The share's records were purged: its recipients erase their copies. ``subject``
        (the pseudonym) names whose records, for the processing log; not published."""

        case_id: UUID
        recipients: tuple[str, ...]
        reason: str
        purged_at: datetime
        subject: str | None = None  # None: stored before it was kept

    @event(ErasurePassedOn)
    def _record_erasure_passed_on(
        self,
        case_id: UUID,
        recipients: tuple[str, ...],
        reason: str,
        purged_at: datetime,
        subject: str | None = None,
    ) -> None:
        self.erasure_passed_on = True


@dataclass(frozen=True)
class CorrectionAnswer:
    """A correction run for a citizen's correction request (AVG art. 16): the request, and how
    the correction answers it (``granted``, ``partly_granted`` with the ``reason`` for what was
    not corrected, sealed under the subject's key; ``pending``: the request stays open)."""

    request_id: UUID
    answer: str
    reason: Sealed | None = None


def check_may_correct(from_agency: str, agency: str, record_holder: str | None) -> None:
    """Only the sender (it knows what it shared) or the case's record holder (acting on the
    subject's request) may correct a share, or even learn what became of the request."""
    if agency not in (from_agency, record_holder):
        raise NotSenderOrRecordHolderError(
            "only the agency that shared it or the case's record holder may correct a share", "agency"
        )


RECEIPT_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/inbox-receipts")


class InboxReceipt(Aggregate):
    """The recipient's inbox took a share: the broker confirmed the ``ShareReceived`` message
    into the agency's durable inbox queue. One per share; the accountability ledger's receipt
    time. (Not that the agency read it: what it does with its inbox is its own record.)"""

    class ShareTakenByInbox(Aggregate.Created):
        share_id: UUID
        case_id: UUID
        to_agency: str
        message_id: str

    @event(ShareTakenByInbox)
    def __init__(self, share_id: UUID, case_id: UUID, to_agency: str, message_id: str):
        self.share_id = share_id
        self.case_id = case_id
        self.to_agency = to_agency
        self.message_id = message_id

    @staticmethod
    def create_id(share_id: UUID, case_id: UUID, to_agency: str, message_id: str) -> UUID:
        return receipt_id(share_id)


def receipt_id(share_id: UUID) -> UUID:
    """One receipt per share: a message published again (a relay restart) finds it on record."""
    return uuid5(RECEIPT_NAMESPACE, str(share_id))


class RefusedShare(Aggregate):
    """A share that was not allowed, with the reason: on record like every decision."""

    @event("ShareRefused")
    def __init__(
        self,
        request_id: UUID,
        case_id: UUID,
        subject: str,
        from_agency: str,
        to_agency: str,
        categories: tuple[str, ...],
        purpose: str,
        reason_code: str,
        reason: str,
        visible_to_subject: bool,
        catalogue_version: str,
        correlation_id: str | None,
        reason_details: dict[str, str] | None = None,
        direction: str = "push",
        part_of: UUID | None = None,
        provision: dict[str, str] | None = None,
    ):
        self.request_id = request_id
        self.case_id = case_id
        self.subject = subject
        self.from_agency = from_agency
        self.to_agency = to_agency
        self.categories = tuple(categories)
        self.reason_code = reason_code
        self.reason = reason
        self.visible_to_subject = visible_to_subject
        self.part_of = part_of

    @staticmethod
    def create_id(
        request_id: UUID, to_agency: str, categories: tuple[str, ...] = (), part_of: UUID | None = None
    ) -> UUID:
        return share_id(request_id, to_agency, categories[0] if part_of is not None else None)

    @classmethod
    def record(
        cls,
        request: ShareRequest,
        decision: Decision,
        reason: str,
        visible_to_subject: bool,
        catalogue_version: str,
        correlation_id: str,
        part_of: UUID | None = None,
        provisions: CitedProvisions | None = None,
    ) -> RefusedShare:
        """Puts a refusal on record with its reason in plain language, and whether the subject
        is to see it (an agency's own slip is not theirs to read). A request decided per
        category gives the recipient one first decision (the share of the allowed categories,
        or the first refusal); each further refusal is ``part_of`` it, named by its first
        category."""
        if decision.allowed:
            raise ValueError("an allowed decision is recorded as a Share")
        return cls(
            request_id=request.request_id,
            case_id=request.case_id,
            subject=decision.subject or request.subject,
            from_agency=request.from_agency,
            to_agency=request.to_agency,
            categories=decision.categories or request.categories,
            purpose=request.purpose,
            reason_code=decision.reason_code,
            reason=reason,
            visible_to_subject=visible_to_subject,
            catalogue_version=catalogue_version,
            correlation_id=correlation_id,
            reason_details=dict(decision.reason_details),
            direction=request.direction,
            part_of=part_of,
            provision=(provisions or CitedProvisions()).stored()[0],
        )
