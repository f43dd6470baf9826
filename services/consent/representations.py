"""Which minors a legal representative represents, per case: the index
``consent_representations`` beside consent's case facts (pseudonyms only, no other personal data).

Written in the same transaction as the case's facts (``RepresentedCaseFacts`` extends the shared
read model), so the representative's page never misses a case consent knows; a store whose case
facts were kept before this index existed is indexed once when the service starts. The index only
finds candidates: whether the representative may act is decided against the case's facts at
every act (``services.consent.domain.acts_for``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from shared.casefacts import CHUNK, CaseFacts
from shared.contracts.envelope import ReceivedEvent
from shared.contracts.events.case_registration import CaseRegistered
from shared.db import Cursor

TABLE = "consent_representations"

CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    " representative TEXT NOT NULL, case_id TEXT NOT NULL, subject TEXT NOT NULL,"
    " PRIMARY KEY (representative, case_id, subject))"
)
#: A purge forgets a case's rows by the case.
INDEXES = (f"CREATE INDEX IF NOT EXISTS {TABLE}_case ON {TABLE} (case_id)",)


def write_rows(cur: Cursor, case_id: UUID, subjects: dict[str, Any]) -> None:
    """The case's represented subjects, from its facts' ``subjects`` (pseudonym -> facts)."""
    for subject, facts in subjects.items():
        representative = facts.get("represented_by")
        if representative:
            cur.execute(
                f"INSERT INTO {TABLE} (representative, case_id, subject) VALUES (?, ?, ?)"
                " ON CONFLICT (representative, case_id, subject) DO NOTHING",
                (representative, str(case_id), subject),
            )


def represented_by(cur: Cursor, representative: str) -> list[tuple[UUID, str]]:
    """(case, subject) pairs that name ``representative``, oldest case first."""
    rows = cur.execute(
        f"SELECT case_id, subject FROM {TABLE} WHERE representative = ? ORDER BY case_id, subject",
        (representative,),
    ).fetchall()
    return [(UUID(row[0]), str(row[1])) for row in rows]


class RepresentedCaseFacts(CaseFacts):
    """Consent's case facts, with the representations of the case's subjects indexed beside them."""

    def __init__(self, app: Any):
        super().__init__(app)
        app.sql.execute_script([CREATE, *INDEXES])
        self._index_facts_kept_before()

    def record_registered(self, cur: Cursor, event: ReceivedEvent[CaseRegistered]) -> None:
        super().record_registered(cur, event)
        data = event.data
        write_rows(
            cur,
            data.case_id,
            {s.pseudonym: {"represented_by": s.represented_by} for s in data.subjects},
        )

    def forget(self, cur: Cursor, case_id: UUID) -> None:
        super().forget(cur, case_id)
        cur.execute(f"DELETE FROM {TABLE} WHERE case_id = ?", (str(case_id),))

    def forget_many(self, cur: Cursor, case_ids: Sequence[UUID]) -> None:
        super().forget_many(cur, case_ids)
        keys = [str(case_id) for case_id in case_ids]
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            cur.execute(f"DELETE FROM {TABLE} WHERE case_id IN ({', '.join('?' * len(chunk))})", chunk)

    def represented_by(self, representative: str) -> list[tuple[UUID, str]]:
        with self.app.sql.transaction(commit=False) as cur:
            return represented_by(cur, representative)

    def _index_facts_kept_before(self) -> None:
        """Indexes the cases whose facts name a representative but have no row here (kept
        before this index existed); repeat-safe, and a no-op once every case is indexed."""
        with self.app.sql.transaction(commit=True) as cur:
            rows = cur.execute(
                f"SELECT case_id, facts FROM {self.table}"
                f" WHERE facts LIKE ? AND case_id NOT IN (SELECT case_id FROM {TABLE})",
                ('%"represented_by": "%',),
            ).fetchall()
            for case_id, facts in rows:
                write_rows(cur, UUID(case_id), json.loads(facts)["subjects"])
