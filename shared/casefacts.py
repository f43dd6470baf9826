"""What a service knows about cases, learnt from case_registration's events.

Several services decide or tell things about a case without owning it (consent checks that the
subject belongs to the case, data_sharing checks the agreement, notification names the contact
point, retention reads the retention class). Each keeps this read model in its own store, fed by
its own consumer, with tracking in the same transaction: no service queries another's store.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.application import KetenApplication
from shared.caseview import AgreementFacts, CaseView, ContactPointFacts, ParticipantFacts, SubjectFacts
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.case_registration import (
    CaseActivated,
    CaseClosed,
    CaseRegistered,
    CaseResumed,
    CaseStopped,
    ParticipantAdded,
    ParticipantRemoved,
)
from shared.contracts.events.retention import RecordsPurged
from shared.db import Cursor
from shared.sealed import KeyScope, Sealed, sealed_text

#: Cases read or deleted by one statement of a batch (``get_many``, ``forget_many``).
CHUNK = 500

#: case_registration's events, which this read model follows.
CaseEvent = (
    CaseRegistered
    | CaseActivated
    | CaseStopped
    | CaseResumed
    | ParticipantAdded
    | ParticipantRemoved
    | CaseClosed
)


class CaseFacts:
    """The ``<app>_case_facts`` table: one row per case."""

    #: How many cases' parsed rows ``view`` keeps.
    VIEWS_KEPT = 2_000

    def __init__(self, app: KetenApplication):
        self.app = app
        self.table = f"{app.name}_case_facts"
        self._views: OrderedDict[str, tuple[tuple[Any, ...], CaseView]] = OrderedDict()
        self._views_lock = threading.Lock()
        app.sql.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " case_id TEXT PRIMARY KEY,"
                " status TEXT NOT NULL,"
                " facts TEXT NOT NULL,"
                " registered_at TEXT NOT NULL,"
                " ended_at TEXT,"
                " outcome TEXT)"
            ]
        )

    #: The events this read model follows (case_registration's, and retention's purges).
    EVENTS = (
        "CaseRegistered",
        "CaseActivated",
        "CaseStopped",
        "CaseResumed",
        "ParticipantAdded",
        "ParticipantRemoved",
        "CaseClosed",
        "RecordsPurged",
    )

    def apply(self, event: ReceivedEvent[Any]) -> None:
        """Applies one of ``EVENTS`` and records its tracking, in one transaction."""
        data = event.data

        def write(cur: Cursor) -> None:
            if isinstance(data, CaseRegistered):
                self.record_registered(cur, event)
            elif isinstance(data, CaseClosed):
                self.record_ended(cur, data.case_id, "closed", event.occurred_at, data.outcome)
            elif isinstance(data, RecordsPurged):
                self.forget_purged(cur, event)
            else:
                self.record_change(cur, event)

        self.app.write_tracked(event.tracking, write)
        if isinstance(data, RecordsPurged):
            self.app.forget_keys(event)

    # -- writing (inside the caller's tracked transaction) --------------------------------
    def record_registered(self, cur: Cursor, event: ReceivedEvent[CaseRegistered]) -> None:
        data = event.data
        facts = {
            "table": data.table,
            "purpose": data.purpose,
            "participants": {
                p.agency: {"role": p.role, "legal_ground": p.legal_ground} for p in data.participants
            },
            "agreement": {a.agency: {"bring": a.bring, "receive": a.receive} for a in data.agreement},
            "subjects": {
                s.pseudonym: {
                    "role": s.role,
                    "minor": s.minor,
                    "details": s.details.to_json() if s.details else None,
                    "represented_by": s.represented_by,
                }
                for s in data.subjects
            },
            "record_holder": data.record_holder,
            "retention_class": data.retention_class,
            "contact_point": {
                "agency": data.contact_point.agency,
                # Sealed under the case's key; plain text from an event stored before is sealed now.
                "function": _json_or_none(
                    self.app.reseal(KeyScope(data.case_id), data.contact_point.function)
                ),
            },
        }
        cur.execute(
            f"INSERT INTO {self.table} (case_id, status, facts, registered_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (case_id) DO NOTHING",
            (str(data.case_id), "registered", json.dumps(facts), event.occurred_at.isoformat()),
        )

    def record_change(self, cur: Cursor, event: ReceivedEvent[CaseEvent]) -> None:
        """Applies a change of a running case: activated, stopped or resumed for a subject, a
        participant added or removed."""
        data = event.data
        row = cur.execute(
            f"SELECT status, facts FROM {self.table} WHERE case_id = ?", (str(data.case_id),)
        ).fetchone()
        if row is None:
            return
        status, facts = row[0], json.loads(row[1])
        if isinstance(data, CaseActivated):
            status = "active"
        elif isinstance(data, CaseStopped | CaseResumed):
            status = data.status
            stopped = set(facts.get("stopped_for", ()))
            if isinstance(data, CaseStopped):
                stopped.add(data.subject)
            else:
                stopped.discard(data.subject)
            facts["stopped_for"] = sorted(stopped)
        elif isinstance(data, ParticipantAdded):
            participant, line = data.participant, data.agreement
            facts["participants"][participant.agency] = {
                "role": participant.role,
                "legal_ground": participant.legal_ground,
            }
            facts["agreement"][line.agency] = {"bring": line.bring, "receive": line.receive}
        elif isinstance(data, ParticipantRemoved):
            facts["participants"].pop(data.agency, None)
            facts["agreement"].pop(data.agency, None)
        cur.execute(
            f"UPDATE {self.table} SET status = ?, facts = ? WHERE case_id = ?",
            (status, json.dumps(facts), str(data.case_id)),
        )

    def record_ended(
        self, cur: Cursor, case_id: UUID, status: str, ended_at: datetime, outcome: str | None
    ) -> None:
        cur.execute(
            f"UPDATE {self.table} SET status = ?, ended_at = ?, outcome = ? WHERE case_id = ?",
            (status, ended_at.isoformat(), outcome, str(case_id)),
        )

    def forget(self, cur: Cursor, case_id: UUID) -> None:
        """Deletes the case's row (its subjects' sealed details with it) after a purge."""
        cur.execute(f"DELETE FROM {self.table} WHERE case_id = ?", (str(case_id),))

    def forget_many(self, cur: Cursor, case_ids: Sequence[UUID]) -> None:
        """``forget`` of many cases, a statement per ``CHUNK`` of them (a batch purge)."""
        keys = [str(case_id) for case_id in case_ids]
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            cur.execute(f"DELETE FROM {self.table} WHERE case_id IN ({', '.join('?' * len(chunk))})", chunk)

    def forget_subject(self, cur: Cursor, case_id: UUID, subject: str) -> None:
        """Drops one subject's sealed details after their records were purged."""
        row = cur.execute(f"SELECT facts FROM {self.table} WHERE case_id = ?", (str(case_id),)).fetchone()
        if row is None:
            return
        facts = json.loads(row[0])
        if subject in facts["subjects"]:
            facts["subjects"][subject]["details"] = None
            cur.execute(
                f"UPDATE {self.table} SET facts = ? WHERE case_id = ?", (json.dumps(facts), str(case_id))
            )

    def forget_purged(self, cur: Cursor, purge: ReceivedEvent[RecordsPurged]) -> None:
        """Applies ``RecordsPurged``: the subject's details go; the whole row once nothing
        personal of the case is left."""
        data = purge.data
        if data.complete:
            self.forget(cur, data.case_id)
        elif data.subject:
            self.forget_subject(cur, data.case_id, data.subject)

    # -- reading ---------------------------------------------------------------------------
    def get(self, case_id: UUID) -> CaseView | None:
        with self.app.sql.transaction(commit=False) as cur:
            return self.get_in(cur, case_id)

    def get_many(self, case_ids: Sequence[UUID]) -> dict[UUID, CaseView]:
        """The cases of ``case_ids`` there are, a statement per ``CHUNK`` of them (not parsed
        through the ``view`` cache: a batch reads each once)."""
        found: dict[UUID, CaseView] = {}
        keys = [str(case_id) for case_id in case_ids]
        with self.app.sql.transaction(commit=False) as cur:
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                rows = cur.execute(
                    "SELECT case_id, status, facts, registered_at, ended_at, outcome"
                    f" FROM {self.table} WHERE case_id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
                for row in rows:
                    view = case_view(tuple(row))
                    found[view.case_id] = view
        return found

    def get_in(self, cur: Cursor, case_id: UUID) -> CaseView | None:
        """The case as the open transaction ``cur`` sees it."""
        row = cur.execute(
            "SELECT case_id, status, facts, registered_at, ended_at, outcome"
            f" FROM {self.table} WHERE case_id = ?",
            (str(case_id),),
        ).fetchone()
        return None if row is None else self.view(row)

    def view(self, row: Any) -> CaseView:
        """``case_view`` of a row just read, parsed once while the row stays the same: the row
        read is the authority (every read still goes to the store), only the parsing of an
        unchanged row is saved. A row that changed in any column is parsed again."""
        key = tuple(row)
        with self._views_lock:
            kept = self._views.get(key[0])
            if kept is not None and kept[0] == key:
                self._views.move_to_end(key[0])
                return kept[1]
        view = case_view(key)
        with self._views_lock:
            self._views[key[0]] = (key, view)
            while len(self._views) > self.VIEWS_KEPT:
                self._views.popitem(last=False)
        return view


def _json_or_none(sealed: Sealed | None) -> dict[str, str] | None:
    return None if sealed is None else sealed.to_json()


def case_view(row: Any) -> CaseView:
    """A case as a row of the table reads (case_id, status, facts, registered_at, ended_at, outcome)."""
    facts = json.loads(row[2])
    contact = facts["contact_point"]
    return CaseView(
        case_id=UUID(row[0]),
        status=row[1],
        table=facts["table"],
        purpose=facts["purpose"],
        participants={
            agency: ParticipantFacts(p["role"], p["legal_ground"])
            for agency, p in facts["participants"].items()
        },
        agreement={
            agency: AgreementFacts(tuple(a["bring"]), tuple(a["receive"]))
            for agency, a in facts["agreement"].items()
        },
        subjects={
            pseudonym: SubjectFacts(
                pseudonym=pseudonym,
                role=s["role"],
                minor=bool(s["minor"]),
                details=Sealed.from_json(s["details"]) if s.get("details") else None,
                represented_by=s.get("represented_by"),
            )
            for pseudonym, s in facts["subjects"].items()
        },
        record_holder=facts["record_holder"],
        retention_class=facts["retention_class"],
        contact_point=ContactPointFacts(contact["agency"], sealed_text(contact.get("function"))),
        registered_at=datetime.fromisoformat(row[3]),
        ended_at=datetime.fromisoformat(row[4]) if row[4] else None,
        outcome=row[5],
        stopped_for=frozenset(facts.get("stopped_for", ())),
    )
