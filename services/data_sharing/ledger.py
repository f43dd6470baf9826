"""The accountability ledger: every share an agency provided and received, as a read model.

One row per decision (``DataShared`` or ``ShareRefused``, one per request and recipient) in
``data_sharing_ledger``: the case, the subject's pseudonym, sender and recipient, written or
oral and in which meeting, the purpose, both agencies' grounds with the provision of law each
rests on, the categories, the catalogue version, the outcome with its reason code, when it was
decided, and when the recipient's inbox took it (``InboxReceipt``). Nothing sealed is copied
here: no content, no reason text, no contact details.

The sender and the recipient read the same row, so their views of one share agree field for
field; each reads only rows where it is one of the two (``entries``). Rows are written in the
transaction that records their events (``project``) and can be rebuilt from the events alone
(``rebuild``). A decision event that names its provision (``provision``: law and article) is
read as decided; otherwise the provision is looked up in the catalogue the service runs on when
the row is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from services.data_sharing.domain import InboxReceipt, RefusedShare, Share
from shared.application import KetenApplication
from shared.catalogue import Catalogue
from shared.db import Cursor

PROVIDED = "provided"
RECEIVED = "received"
SIDES = (PROVIDED, RECEIVED)


@dataclass(frozen=True, kw_only=True)
class LedgerCorrection:
    """A correction of a share's content, passed on to its recipient (rule 6)."""

    correction_id: UUID
    corrected_by: str
    reason_code: str
    corrected_at: datetime


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One decision on one share, as both its sender and its recipient see it."""

    share_id: UUID
    request_id: UUID
    case_id: UUID
    #: The subject's keyed pseudonym (never the BSN).
    subject: str
    from_agency: str
    to_agency: str
    #: ``push`` (the sender offered) or ``pull`` (the recipient asked).
    direction: str
    #: ``written`` or ``oral``; None where the decision did not record it (older refusals).
    form: str | None
    meeting_id: str | None
    outcome: str
    reason_code: str
    purpose: str
    categories: tuple[str, ...]
    sender_ground: str | None
    sender_provision: str | None
    recipient_ground: str | None
    recipient_provision: str | None
    #: Per special or criminal category, the sender's own ground for it.
    special_grounds: Mapping[str, str]
    catalogue_version: str
    override_id: UUID | None
    decided_at: datetime
    #: When the recipient's inbox took the share; None for a refusal, or not (yet) delivered.
    received_at: datetime | None
    #: Corrections of the content, oldest first; each was passed on to the recipient.
    corrections: tuple[LedgerCorrection, ...] = ()
    #: When the platform purged the share's records and told the recipient to erase its copy.
    erasure_passed_on_at: datetime | None = None

    def side_of(self, agency: str) -> str:
        return PROVIDED if agency == self.from_agency else RECEIVED


@dataclass(frozen=True, kw_only=True)
class LedgerQuery:
    """Which rows of one agency's ledger: its side(s), a period of decisions (``since`` and
    ``until`` inclusive, as dates), one case, one subject."""

    agency: str
    sides: tuple[str, ...] = SIDES
    since: date | None = None
    until: date | None = None
    case_id: UUID | None = None
    subject: str | None = None


class Ledger:
    """The ``<app>_ledger`` table: written from data_sharing's own events, read per agency."""

    def __init__(self, app: KetenApplication, catalogue: Catalogue) -> None:
        self.app = app
        self.catalogue = catalogue
        self.table = f"{app.name}_ledger"
        app.sql.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " share_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, subject TEXT NOT NULL,"
                " from_agency TEXT NOT NULL, to_agency TEXT NOT NULL, decided_at TEXT NOT NULL,"
                " document TEXT NOT NULL)",
                f"CREATE INDEX IF NOT EXISTS {self.table}_from ON {self.table} (from_agency, decided_at)",
                f"CREATE INDEX IF NOT EXISTS {self.table}_to ON {self.table} (to_agency, decided_at)",
            ]
        )

    # -- writing: live (inside the save's transaction) and on a rebuild --------------------
    def project(self, cur: Cursor, domain_event: Any) -> None:
        """Applies one of data_sharing's own events; others change nothing here."""
        if isinstance(domain_event, Share.DataShared):
            self._insert(cur, self._shared(domain_event))
        elif isinstance(domain_event, RefusedShare.ShareRefused):  # type: ignore[attr-defined]
            self._insert(cur, self._refused(domain_event))
        elif isinstance(domain_event, InboxReceipt.ShareTakenByInbox):
            self._change(cur, domain_event.share_id, received_at=_iso(domain_event.timestamp))
        elif isinstance(domain_event, Share.ShareCorrected):
            correction = {
                "correction_id": str(domain_event.correction_id),
                "corrected_by": domain_event.corrected_by,
                "reason_code": domain_event.reason_code,
                "corrected_at": _iso(domain_event.timestamp),
            }
            self._change(cur, domain_event.originator_id, correction=correction)
        elif isinstance(domain_event, Share.ErasurePassedOn):
            self._change(cur, domain_event.originator_id, erasure_passed_on_at=_iso(domain_event.timestamp))

    def _change(
        self, cur: Cursor, share_id: UUID, correction: dict[str, str] | None = None, **fields: str
    ) -> None:
        row = cur.execute(
            f"SELECT document FROM {self.table} WHERE share_id = ?", (str(share_id),)
        ).fetchone()
        if row is None:
            return
        document = json.loads(row[0])
        document.update(fields)
        if correction is not None:
            document["corrections"] = [*document.get("corrections", []), correction]
        cur.execute(
            f"UPDATE {self.table} SET document = ? WHERE share_id = ?", (json.dumps(document), str(share_id))
        )

    def rebuild(self, events: Iterable[Any]) -> int:
        """Empties the ledger and applies every event of data_sharing's log, in order."""
        applied = 0
        with self.app.sql.transaction() as cur:
            cur.execute(f"DELETE FROM {self.table}")
            for domain_event in events:
                self.project(cur, domain_event)
                applied += 1
        return applied

    def _shared(self, event: Share.DataShared) -> LedgerEntry:
        return LedgerEntry(
            share_id=event.originator_id,
            request_id=event.request_id,
            case_id=event.case_id,
            subject=event.subject,
            from_agency=event.from_agency,
            to_agency=event.to_agency,
            direction=event.direction,
            form=event.form,
            meeting_id=event.meeting_id,
            outcome="shared",
            reason_code="allowed",
            purpose=event.purpose,
            categories=tuple(event.categories),
            sender_ground=event.sender_ground,
            sender_provision=self._provision(event, "sender", event.from_agency, event.sender_ground),
            recipient_ground=event.recipient_ground,
            recipient_provision=self._provision(event, "recipient", event.to_agency, event.recipient_ground),
            special_grounds=dict(event.special_grounds),
            catalogue_version=event.catalogue_version,
            override_id=event.override_id,
            decided_at=event.timestamp,
            received_at=None,
        )

    def _refused(self, event: Any) -> LedgerEntry:
        # Refusals record no grounds, form or meeting today; a decision event that does is read.
        sender_ground = getattr(event, "sender_ground", None)
        recipient_ground = getattr(event, "recipient_ground", None)
        return LedgerEntry(
            share_id=event.originator_id,
            request_id=event.request_id,
            case_id=event.case_id,
            subject=event.subject,
            from_agency=event.from_agency,
            to_agency=event.to_agency,
            direction=getattr(event, "direction", "push"),
            form=getattr(event, "form", None),
            meeting_id=getattr(event, "meeting_id", None),
            outcome="refused",
            reason_code=event.reason_code,
            purpose=event.purpose,
            categories=tuple(event.categories),
            sender_ground=sender_ground,
            sender_provision=self._provision(event, "sender", event.from_agency, sender_ground),
            recipient_ground=recipient_ground,
            recipient_provision=self._provision(event, "recipient", event.to_agency, recipient_ground),
            special_grounds=dict(getattr(event, "special_grounds", None) or {}),
            catalogue_version=event.catalogue_version,
            override_id=None,
            decided_at=event.timestamp,
            received_at=None,
        )

    def _provision(self, event: Any, side: str, agency: str, ground: str | None) -> str | None:
        # A decision event that names the provision (the sender's as ``provision``: law and
        # article) is read as it was decided; else the catalogue the service runs on says.
        recorded = getattr(event, f"{side}_provision", None)
        if recorded is None and side == "sender":
            recorded = getattr(event, "provision", None)
        if isinstance(recorded, Mapping) and recorded.get("law"):
            return f"{recorded['law']}, {recorded.get('article', '')}".rstrip(", ")
        if isinstance(recorded, str) and recorded:
            return recorded
        if not ground:
            return None
        provision = self.catalogue.provision(agency, event.purpose, ground)
        return provision.citation if provision else None

    def _insert(self, cur: Cursor, entry: LedgerEntry) -> None:
        cur.execute(
            f"INSERT INTO {self.table}"
            " (share_id, case_id, subject, from_agency, to_agency, decided_at, document)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (share_id) DO NOTHING",
            (
                str(entry.share_id),
                str(entry.case_id),
                entry.subject,
                entry.from_agency,
                entry.to_agency,
                _iso(entry.decided_at),
                json.dumps(_document(entry)),
            ),
        )

    # -- reading ---------------------------------------------------------------------------
    def entries(self, query: LedgerQuery) -> list[LedgerEntry]:
        """The agency's rows on the sides asked for, oldest decision first."""
        clauses, params = [], []
        sides = []
        if PROVIDED in query.sides:
            sides.append("from_agency = ?")
            params.append(query.agency)
        if RECEIVED in query.sides:
            sides.append("to_agency = ?")
            params.append(query.agency)
        if not sides:
            return []
        clauses.append("(" + " OR ".join(sides) + ")")
        if query.since is not None:
            clauses.append("decided_at >= ?")
            params.append(_iso(datetime.combine(query.since, time.min, UTC)))
        if query.until is not None:
            clauses.append("decided_at < ?")
            params.append(_iso(datetime.combine(query.until + timedelta(days=1), time.min, UTC)))
        if query.case_id is not None:
            clauses.append("case_id = ?")
            params.append(str(query.case_id))
        if query.subject is not None:
            clauses.append("subject = ?")
            params.append(query.subject)
        with self.app.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT document FROM {self.table} WHERE {' AND '.join(clauses)}"
                " ORDER BY decided_at, share_id",
                tuple(params),
            ).fetchall()
        return [_entry(json.loads(row[0])) for row in rows]


# -- the row's JSON document: inside this module only ----------------------------------------
def _iso(moment: datetime) -> str:
    """UTC, fixed width: the stored text sorts as the moments do."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _document(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "share_id": str(entry.share_id),
        "request_id": str(entry.request_id),
        "case_id": str(entry.case_id),
        "subject": entry.subject,
        "from_agency": entry.from_agency,
        "to_agency": entry.to_agency,
        "direction": entry.direction,
        "form": entry.form,
        "meeting_id": entry.meeting_id,
        "outcome": entry.outcome,
        "reason_code": entry.reason_code,
        "purpose": entry.purpose,
        "categories": list(entry.categories),
        "sender_ground": entry.sender_ground,
        "sender_provision": entry.sender_provision,
        "recipient_ground": entry.recipient_ground,
        "recipient_provision": entry.recipient_provision,
        "special_grounds": dict(entry.special_grounds),
        "catalogue_version": entry.catalogue_version,
        "override_id": str(entry.override_id) if entry.override_id else None,
        "decided_at": _iso(entry.decided_at),
        "received_at": _iso(entry.received_at) if entry.received_at else None,
        "corrections": [],
        "erasure_passed_on_at": None,
    }


def _entry(document: Mapping[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        share_id=UUID(document["share_id"]),
        request_id=UUID(document["request_id"]),
        case_id=UUID(document["case_id"]),
        subject=document["subject"],
        from_agency=document["from_agency"],
        to_agency=document["to_agency"],
        direction=document["direction"],
        form=document["form"],
        meeting_id=document["meeting_id"],
        outcome=document["outcome"],
        reason_code=document["reason_code"],
        purpose=document["purpose"],
        categories=tuple(document["categories"]),
        sender_ground=document["sender_ground"],
        sender_provision=document["sender_provision"],
        recipient_ground=document["recipient_ground"],
        recipient_provision=document["recipient_provision"],
        special_grounds=dict(document["special_grounds"]),
        catalogue_version=document["catalogue_version"],
        override_id=UUID(document["override_id"]) if document["override_id"] else None,
        decided_at=datetime.fromisoformat(document["decided_at"]),
        received_at=_moment(document["received_at"]),
        corrections=tuple(
            LedgerCorrection(
                correction_id=UUID(c["correction_id"]),
                corrected_by=c["corrected_by"],
                reason_code=c["reason_code"],
                corrected_at=datetime.fromisoformat(c["corrected_at"]),
            )
            for c in document.get("corrections", [])
        ),
        erasure_passed_on_at=_moment(document.get("erasure_passed_on_at")),
    )


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
