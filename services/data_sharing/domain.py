"""Share decisions: may this agency share these data about this person with that agency?

Pure domain. ``decide`` weighs one request for one recipient against what is known of the case
(``CaseView``) and the subject's consent, and returns a ``Decision`` with a reason code; the
application records it as ``Share`` (``DataShared``) or ``RefusedShare`` (``ShareRefused``).
Every decision is an event, allowed or refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from shared.caseview import CaseView
from shared.catalogue import Catalogue
from shared.sealed import Sealed

SHARE_NAMESPACE = uuid5(NAMESPACE_URL, "https://keten.example/shares")


def share_id(request_id: UUID, to_agency: str) -> UUID:
    """One decision per request and recipient; a repeated request finds its decision again."""
    return uuid5(SHARE_NAMESPACE, f"{request_id}/{to_agency}")


@dataclass(frozen=True)
class ShareRequest:
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
    special_grounds: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConsentFacts:
    """The subject's consents in the case, as far as data_sharing needs them."""

    consents: tuple[dict[str, Any], ...] = ()

    def covers(self, request: ShareRequest, today: date) -> bool:
        return any(
            consent["purpose"] == request.purpose
            and request.to_agency in consent["recipients"]
            and set(request.categories) <= set(consent["categories"])
            and date.fromisoformat(str(consent["valid_until"])) >= today
            for consent in self.consents
        )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason_code: str
    reason: str
    sender_ground: str | None = None
    recipient_ground: str | None = None
    #: Whether the subject is shown this refusal: a refused attempt that concerns the subject's
    #: own say (consent, objection) is; an agency's own slip (wrong category) need not alarm them.
    visible_to_subject: bool = False


def refused(code: str, reason: str, visible: bool = False) -> Decision:
    return Decision(False, code, reason, visible_to_subject=visible)


def decide(
    request: ShareRequest, case: CaseView, consent: ConsentFacts, catalogue: Catalogue, today: date
) -> Decision:
    """The rules of DESIGN.md, in order; the first that fails decides the refusal."""
    if not case.is_open:
        return refused("case_not_open", f"the case is {case.status}; nothing more may be shared in it")
    sender = case.participants.get(request.from_agency)
    recipient = case.participants.get(request.to_agency)
    if sender is None:
        return refused("sender_not_participant", "the sending agency does not take part in this case")
    if recipient is None:
        return refused("recipient_not_participant", f"{request.to_agency} does not take part in this case")
    if request.to_agency == request.from_agency:
        return refused("same_agency", "an agency does not share with itself")
    if request.purpose != case.purpose:
        return refused("purpose_mismatch", "data may only be shared for the purpose of the case")
    if request.subject not in case.subjects:
        return refused("not_a_subject", "the person is not a data subject of this case")
    sender_agreement = case.agreement.get(request.from_agency, {"bring": (), "receive": ()})
    recipient_agreement = case.agreement.get(request.to_agency, {"bring": (), "receive": ()})
    for code in request.categories:
        if code not in sender_agreement["bring"]:
            return refused(
                "category_not_agreed",
                f"the data agreement does not let {request.from_agency} bring "
                f"'{catalogue.categories[code].label('en')}' to this case",
            )
        if code not in recipient_agreement["receive"]:
            return refused(
                "category_not_agreed",
                f"the data agreement does not let {request.to_agency} receive "
                f"'{catalogue.categories[code].label('en')}' in this case",
            )
    agency = catalogue.agencies[request.from_agency]
    for code in request.categories:
        category = catalogue.categories[code]
        if category.needs_own_ground:
            ground = request.special_grounds.get(code)
            if ground is None or ground not in agency.special_grounds:
                return refused(
                    "special_category_without_ground",
                    f"'{category.label('en')}' is a special category: "
                    "the sender must state its own ground for it",
                )
    if sender["legal_ground"] == "consent" and not consent.covers(request, today):
        return refused(
            "no_valid_consent",
            "the sender relies on consent, and the person did not consent to this share",
            visible=True,
        )
    return Decision(
        True,
        "allowed",
        "within the case's purpose, data agreement and legal grounds",
        sender_ground=sender["legal_ground"],
        recipient_ground=recipient["legal_ground"],
    )


class Share(Aggregate):
    """Data that was shared: with whom, what, why, on what ground. Immutable on record."""

    @event("DataShared")
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
        contact_point: dict[str, str],
        catalogue_version: str,
        correlation_id: str | None,
    ):
        self.request_id = request_id
        self.case_id = case_id
        self.subject = subject
        self.from_agency = from_agency
        self.to_agency = to_agency
        self.categories = tuple(categories)
        self.purpose = purpose
        self.content = content

    @staticmethod
    def create_id(request_id: UUID, to_agency: str) -> UUID:
        return share_id(request_id, to_agency)


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

    @staticmethod
    def create_id(request_id: UUID, to_agency: str) -> UUID:
        return share_id(request_id, to_agency)
