"""How the citizen is told: their overview and the notice of a share, in their words.

Presentation only, on typed values. The overview's rows (``services.notification.overview``)
become what the citizen reads: agencies by name, categories, purposes, grounds and record kinds
by their label in Dutch or English (``shared/catalogue.yaml``), a refusal by the same reason
text its professional got (``shared/reasons.yaml``), sealed values opened (or ``"purged"``),
and when each kind of record goes. What must not be told yet (a share whose notice is deferred,
an override whose explanation is) is left out.

Each value here is a frozen dataclass; ``to_json`` makes the JSON the gateway serves
(``GET /api/citizen/overview``, the page and the citizen's copy): every field of the row as the
overview stores it, with what the view adds or replaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime
from types import MappingProxyType
from typing import Any
from uuid import UUID

from services.notification.domain import Notification
from services.notification.overview import (
    ONLY_WHEN_SET,
    CaseRow,
    ConsentRow,
    ContactPointRow,
    CorrectionRow,
    ErasurePassedOnRow,
    ErasureRow,
    ObjectionRow,
    OverrideRow,
    ParticipantRow,
    PurgeMark,
    RecordedByRow,
    RefusalRow,
    ShareRow,
    SubjectRecords,
)
from shared.catalogue import Catalogue
from shared.reasons import refusal_text, share_refusals
from shared.sealed import PURGED, Sealed

#: Opens a sealed value: its plaintext, ``PURGED`` once its key is shredded, None for None.
Opener = Callable[[Sealed | None], object]

#: Metadata of a field whose value is a row: the JSON holds the row's fields in its place.
ROW: Mapping[str, bool] = MappingProxyType({"row": True})


class Wording:
    """The catalogue's labels in one language (``nl`` or ``en``); a code the catalogue does not
    know reads as itself."""

    def __init__(self, catalogue: Catalogue, language: str) -> None:
        self.catalogue = catalogue
        self.language = language

    def agency(self, code: str) -> str:
        return self.catalogue.agency_name(code)

    def agencies(self, codes: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.agency(code) for code in codes)

    def category(self, code: str) -> str:
        category = self.catalogue.categories.get(code)
        return category.label(self.language) if category else code

    def categories(self, codes: Iterable[str]) -> tuple[str, ...]:
        return tuple(self.category(code) for code in codes)

    def purpose(self, code: str) -> str:
        purpose = self.catalogue.purposes.get(code)
        return purpose.label(self.language) if purpose else code

    def ground(self, code: str) -> str:
        return self.catalogue.ground_label(code, self.language)

    def provision(self, share: ShareRow) -> str | None:
        """The law and article the share's ground rests on, as its decision recorded them; for
        a share decided before decisions named them, as the catalogue names them now."""
        if share.provision is not None:
            return share.provision.citation
        found = self.catalogue.provision(share.from_agency, share.purpose, share.sender_ground)
        return found.citation if found else None

    def table(self, code: str) -> str:
        table = self.catalogue.tables.get(code)
        return table.name if table else code

    def record_kind(self, code: str) -> str:
        label = self.catalogue.record_kinds.get(code)
        return label(self.language) if label else code

    def correction_reason(self, code: str) -> str:
        reason = self.catalogue.correction_reasons.get(code)
        return reason.label(self.language) if reason else code

    def erasure_refusal(self, code: str | None) -> str | None:
        reason = self.catalogue.erasure_refusals.get(code or "")
        return reason.label(self.language) if reason else None

    def refusal(self, code: str, details: Mapping[str, str]) -> str | None:
        """Why a share was refused, as its professional was told, for the citizen; None for a
        code the platform does not word."""
        if code not in share_refusals():
            return None
        return refusal_text(code, dict(details), self.catalogue, self.language)


def opened_text(opener: Opener, sealed: Sealed | None) -> str | None:
    """A sealed free text as the citizen reads it: the text, ``"purged"``, or None."""
    value = opener(sealed)
    if value is PURGED:
        return "purged"
    if isinstance(value, dict):
        value = value.get("text") or value.get("content") or next(iter(value.values()), None)
    return None if value is None else str(value)


def opened_function(opener: Opener, function: Sealed | str | None) -> str | None:
    """A professional's function as the citizen reads it: as ``opened_text``, or the plain text
    of a row kept before the function was sealed."""
    return function if isinstance(function, str) else opened_text(opener, function)


def opened_value(opener: Opener, sealed: Sealed | None) -> object:
    """A sealed value as the citizen reads it: its plaintext, ``"purged"``, or None."""
    value = opener(sealed)
    return "purged" if value is PURGED else value


# -- the overview, as the citizen reads it ------------------------------------------------------
@dataclass(frozen=True)
class ParticipantShown:
    participant: ParticipantRow = field(metadata=ROW)
    name: str
    legal_ground_label: str


@dataclass(frozen=True)
class ContactPointShown:
    contact_point: ContactPointRow = field(metadata=ROW)
    agency_name: str
    #: The function, opened: its text, ``"purged"``, or None.
    function: str | None

    @classmethod
    def of(cls, contact_point: ContactPointRow, wording: Wording, opener: Opener) -> ContactPointShown:
        return cls(
            contact_point,
            agency_name=wording.agency(contact_point.agency),
            function=opened_function(opener, contact_point.function),
        )


@dataclass(frozen=True)
class RecordedByShown:
    recorded_by: RecordedByRow = field(metadata=ROW)
    #: The function, opened: its text, ``"purged"``, or None.
    function: str | None


@dataclass(frozen=True)
class PurgeShown:
    mark: PurgeMark = field(metadata=ROW)
    label: str


@dataclass(frozen=True)
class RetentionShown:
    """When a kind of record of the case goes, or went."""

    record_kind: str
    label: str
    due_at: datetime | None
    purged_at: datetime | None


@dataclass(frozen=True)
class CorrectionShown:
    correction: CorrectionRow = field(metadata=ROW)
    by_name: str
    reason: str


@dataclass(frozen=True)
class ErasurePassedOnShown:
    passed_on: ErasurePassedOnRow = field(metadata=ROW)
    recipient_names: tuple[str, ...]


@dataclass(frozen=True)
class ShareShown:
    """A share: who gave what to whom, why, on what ground, and how the subject was told."""

    share: ShareRow = field(metadata=ROW)
    #: The shared content, opened: what it said, ``"purged"``, or None.
    content: object
    #: The case's contact point when it was shared, its function opened.
    contact_point: ContactPointShown
    category_labels: tuple[str, ...]
    from_name: str
    to_name: str
    ground_label: str
    #: The law and article the ground rests on, and those of each special category's ground.
    provision_citation: str | None
    special_citations: tuple[str, ...]
    purpose_label: str
    corrections: tuple[CorrectionShown, ...] = field(default=(), metadata=ONLY_WHEN_SET)
    erasure_passed_on: ErasurePassedOnShown | None = field(default=None, metadata=ONLY_WHEN_SET)


@dataclass(frozen=True)
class RefusalShown:
    """A refused share, with the reason in the citizen's language."""

    refusal: RefusalRow = field(metadata=ROW)
    from_name: str
    to_name: str
    category_labels: tuple[str, ...]
    #: Held back from a request whose other categories were shared (a partial share).
    beside_share: bool
    reason: str | None = field(default=None, metadata=ONLY_WHEN_SET)


@dataclass(frozen=True)
class ConsentShown:
    consent: ConsentRow = field(metadata=ROW)
    category_labels: tuple[str, ...]


@dataclass(frozen=True)
class ObjectionShown:
    objection: ObjectionRow = field(metadata=ROW)
    #: The citizen's own words, opened.
    reason: str | None


@dataclass(frozen=True)
class OverrideShown:
    """A safety override that covered the citizen, explained."""

    override: OverrideRow = field(metadata=ROW)
    explanation: str | None
    recorded_by: RecordedByShown
    ground_label: str
    category_labels: tuple[str, ...]
    recipient_names: tuple[str, ...]


@dataclass(frozen=True)
class ErasureShown:
    erasure: ErasureRow = field(metadata=ROW)
    #: Why it was refused, in the citizen's words; None when granted.
    reason: str | None


@dataclass(frozen=True)
class CaseShown:
    """One case of the citizen: what it is, who takes part, what happened, what goes when."""

    case: CaseRow = field(metadata=ROW)
    table_name: str
    purpose_label: str
    participants: tuple[ParticipantShown, ...]
    record_holder_name: str
    contact_point: ContactPointShown
    shares: tuple[ShareShown, ...]
    refusals: tuple[RefusalShown, ...]
    consents: tuple[ConsentShown, ...]
    objections: tuple[ObjectionShown, ...]
    overrides: tuple[OverrideShown, ...]
    erasure_requests: tuple[ErasureShown, ...]
    purged: tuple[PurgeShown, ...]
    retention: tuple[RetentionShown, ...]


@dataclass(frozen=True)
class Overview:
    """Everything on record about one citizen, in their language."""

    subject: str
    language: str
    cases: tuple[CaseShown, ...]

    def to_json(self) -> dict[str, Any]:
        """The overview as the gateway serves it (``GET /api/citizen/overview``)."""
        document = as_json(self)
        assert isinstance(document, dict)
        return document


def as_json(value: object) -> Any:
    """A value of this module (or a row of the overview) as JSON: a dataclass as an object of
    its fields, a row field replaced by the row's own fields (what the view sets after it
    replaces the row's field of that name), a field marked ``ONLY_WHEN_SET`` left out while it
    is None or empty; ids and times as text."""
    if isinstance(value, Sealed):
        return value.to_json()
    if is_dataclass(value) and not isinstance(value, type):
        document: dict[str, Any] = {}
        for spec in fields(value):
            item = getattr(value, spec.name)
            if spec.metadata.get("row"):
                document.update(as_json(item))
            elif spec.metadata.get("only_when_set") and (item is None or item == () or item == {}):
                document.pop(spec.name, None)
            else:
                document[spec.name] = as_json(item)
        return document
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [as_json(item) for item in value]
    if isinstance(value, Mapping):
        return {key: as_json(item) for key, item in value.items()}
    return value


def present(records: SubjectRecords, subject: str, wording: Wording, opener: Opener) -> Overview:
    """The subject's overview in ``wording``'s language. A share whose notification is deferred,
    and an override whose explanation is, are not shown until the deferral ends: showing them
    would tell what must not be told yet."""
    entries = records.entries
    return Overview(
        subject=subject,
        language=wording.language,
        cases=tuple(
            _case(case, [e for e in entries if e.case_id == case.case_id], wording, opener)
            for case in records.cases
        ),
    )


def _case(case: CaseRow, entries: Sequence[object], wording: Wording, opener: Opener) -> CaseShown:
    shares = tuple(
        _share(e, wording, opener)
        for e in entries
        if isinstance(e, ShareRow) and not (e.notification and e.notification.status == "deferred")
    )
    share_ids = {e.share_id for e in entries if isinstance(e, ShareRow)}
    return CaseShown(
        case=case,
        table_name=wording.table(case.table),
        purpose_label=wording.purpose(case.purpose),
        participants=tuple(
            ParticipantShown(
                p, name=wording.agency(p.agency), legal_ground_label=wording.ground(p.legal_ground)
            )
            for p in case.participants
        ),
        record_holder_name=wording.agency(case.record_holder),
        contact_point=ContactPointShown.of(case.contact_point, wording, opener),
        shares=shares,
        refusals=tuple(
            _refusal(e, wording, beside_share=e.part_of in share_ids)
            for e in entries
            if isinstance(e, RefusalRow)
        ),
        consents=tuple(
            ConsentShown(e, category_labels=wording.categories(e.categories))
            for e in entries
            if isinstance(e, ConsentRow)
        ),
        objections=tuple(
            ObjectionShown(e, reason=opened_text(opener, e.reason))
            for e in entries
            if isinstance(e, ObjectionRow)
        ),
        overrides=tuple(
            _override(e, wording, opener) for e in entries if isinstance(e, OverrideRow) and not e.deferred
        ),
        erasure_requests=tuple(
            ErasureShown(e, reason=wording.erasure_refusal(e.reason_code))
            for e in entries
            if isinstance(e, ErasureRow)
        ),
        purged=tuple(PurgeShown(mark, label=wording.record_kind(mark.record_kind)) for mark in case.purged),
        retention=_retention(case, shares, wording),
    )


def _share(share: ShareRow, wording: Wording, opener: Opener) -> ShareShown:
    passed_on = share.erasure_passed_on
    return ShareShown(
        share=share,
        content=opened_value(opener, share.content),
        contact_point=ContactPointShown.of(share.contact_point, wording, opener),
        category_labels=wording.categories(share.categories),
        from_name=wording.agency(share.from_agency),
        to_name=wording.agency(share.to_agency),
        ground_label=wording.ground(share.sender_ground),
        provision_citation=wording.provision(share),
        special_citations=tuple(
            f"{wording.category(code)}: {provision.citation}"
            for code, provision in share.special_provisions.items()
        ),
        purpose_label=wording.purpose(share.purpose),
        corrections=tuple(
            CorrectionShown(c, by_name=wording.agency(c.by), reason=wording.correction_reason(c.reason_code))
            for c in share.corrections
        ),
        erasure_passed_on=None
        if passed_on is None
        else ErasurePassedOnShown(passed_on, recipient_names=wording.agencies(passed_on.recipients)),
    )


def _refusal(refusal: RefusalRow, wording: Wording, beside_share: bool) -> RefusalShown:
    """A refused share as its subject reads it: the reason in their language, from the same
    text the professional was answered with, agencies and categories by name, and whether it was
    held back from a share that went through. Only refusals ``visible_to_subject`` reach the
    overview at all."""
    text = wording.refusal(refusal.reason_code, refusal.reason_details)
    return RefusalShown(
        refusal=refusal,
        from_name=wording.agency(refusal.from_agency),
        to_name=wording.agency(refusal.to_agency),
        category_labels=wording.categories(refusal.categories),
        beside_share=beside_share,
        reason=refusal.reason if text is None else text,
    )


def _override(override: OverrideRow, wording: Wording, opener: Opener) -> OverrideShown:
    return OverrideShown(
        override=override,
        explanation=opened_text(opener, override.explanation),
        recorded_by=RecordedByShown(
            override.recorded_by, function=opened_function(opener, override.recorded_by.function)
        ),
        ground_label=wording.ground(override.ground),
        category_labels=wording.categories(override.categories),
        recipient_names=wording.agencies(override.recipients),
    )


def _retention(case: CaseRow, shares: Sequence[ShareShown], wording: Wording) -> tuple[RetentionShown, ...]:
    """When each kind of record goes, by the catalogue's rule in force when its period started:
    the minutes at a known date once the case ended; the share records not before their period
    after the last share (retention keeps the exact schedule)."""
    retention_class = wording.catalogue.retention_classes.get(case.retention_class)
    if retention_class is None:
        return ()
    purged = {mark.record_kind: mark.purged_at for mark in case.purged}
    starts = {
        "case_records": case.ended_at,
        "share_records": max((shown.share.occurred_at for shown in shares), default=None),
    }
    shown = []
    for kind, started in starts.items():
        due = None
        if started is not None:
            rule = retention_class.version_at(started).rules.get(kind)
            due = rule.due(started) if rule else None
        shown.append(
            RetentionShown(
                record_kind=kind, label=wording.record_kind(kind), due_at=due, purged_at=purged.get(kind)
            )
        )
    return tuple(shown)


# -- the notice of a share ------------------------------------------------------------------------
@dataclass(frozen=True)
class NoticeShare:
    """One share as a notice lists it."""

    when: str
    from_name: str
    to_name: str
    category_labels: tuple[str, ...]
    purpose_label: str
    ground_label: str
    provision_citation: str | None
    form: str
    #: What was asked beside it and not shared (a partial share), each with why.
    held_back: tuple[NoticeHeldBack, ...] = ()


@dataclass(frozen=True)
class NoticeHeldBack:
    """Categories refused beside a share, and the reason, in the citizen's language."""

    category_labels: tuple[str, ...]
    reason: str | None


@dataclass(frozen=True)
class NoticeOverride:
    """Why a share went ahead despite an objection, as the professional explained it."""

    explanation: str | None
    recorded_by_name: str
    function: str
    was_deferred: bool
    #: The share was made under the override despite an objection (else only its notice was
    #: held under the override's deferral).
    despite_objection: bool = True


@dataclass(frozen=True)
class NoticeContact:
    """Whom the citizen can ask."""

    agency: str
    function: str
    agency_name: str


@dataclass(frozen=True)
class NoticeWords:
    """What the notice templates say (``templates/notice.<lang>.txt.j2``): every share of the
    bundle in plain words, the override's explanation where one applies, whom to ask and how
    to object."""

    name: str | None
    for_minor: bool
    shares: tuple[NoticeShare, ...]
    override: NoticeOverride | None
    contact: NoticeContact
    portal_url: str


def notice_words(
    notifications: Sequence[Notification],
    records: SubjectRecords,
    addressee_name: str | None,
    wording: Wording,
    opener: Opener,
    was_deferred: Callable[[UUID], bool],
    portal_url: str,
) -> NoticeWords:
    """The words of one notice for a bundle of notifications to one addressee, from the
    overview's records of the subject they are about."""
    first = notifications[0]
    case = next((c for c in records.cases if c.case_id == first.case_id), None)
    shares = {e.share_id: e for e in records.entries if isinstance(e, ShareRow)}
    overrides = {e.override_id: e for e in records.entries if isinstance(e, OverrideRow)}
    told = [shares[n.share_id] for n in notifications if n.share_id in shares]
    explained = next(
        (n.explained_override for n in notifications if n.explain_override and n.explained_override), None
    )
    # "although you had objected" only to someone who did: a share about two people may go
    # ahead under an override for the other one's objection, or its notice only be held.
    objected = any(isinstance(e, ObjectionRow) and e.case_id == first.case_id for e in records.entries)
    despite_objection = objected and any(n.override_id == explained for n in notifications)
    override = None
    if explained is not None:
        entry = overrides.get(explained)
        override = NoticeOverride(
            explanation=opened_text(opener, entry.explanation) if entry else None,
            recorded_by_name=wording.agency(entry.recorded_by.agency if entry else ""),
            function=(opened_function(opener, entry.recorded_by.function) if entry else None) or "",
            was_deferred=was_deferred(explained),
            despite_objection=despite_objection,
        )
    contact = ContactPointShown.of(
        case.contact_point if case else ContactPointRow(agency="", function=None), wording, opener
    )
    return NoticeWords(
        name=addressee_name,
        for_minor=first.addressee != first.subject,
        shares=tuple(
            NoticeShare(
                when=f"{share.occurred_at:%Y-%m-%d %H:%M} UTC",
                from_name=wording.agency(share.from_agency),
                to_name=wording.agency(share.to_agency),
                category_labels=wording.categories(share.categories),
                purpose_label=wording.purpose(share.purpose),
                ground_label=wording.ground(share.sender_ground),
                provision_citation=wording.provision(share),
                form=share.form,
                held_back=tuple(
                    NoticeHeldBack(
                        category_labels=wording.categories(refusal.categories),
                        reason=wording.refusal(refusal.reason_code, refusal.reason_details) or refusal.reason,
                    )
                    for refusal in records.entries
                    if isinstance(refusal, RefusalRow) and refusal.part_of == share.share_id
                ),
            )
            for share in told
        ),
        override=override,
        contact=NoticeContact(
            agency=contact.contact_point.agency,
            function=contact.function or "",
            agency_name=contact.agency_name,
        ),
        portal_url=portal_url,
    )
