"""The citizen's overview (inzage): a read model of the event stream, per data subject.

Two tables in the notification service's store:
- ``notification_overview_cases``: per subject and case, what the case is (table, purpose,
  agencies with role and ground, record holder, contact point, status);
- ``notification_overview_entries``: per subject, what happened in a case, in time order: a
  share (from, to, categories, purpose, grounds, written or oral, the sealed content, whether
  and how the subject was told), a refusal the subject should know of, a consent.

Rows hold personal data only sealed; they are written in the same transaction as the tracking
record of the event they come from, and can be rebuilt from the events alone.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.application import KetenApplication
from shared.catalogue import Catalogue
from shared.contracts.envelope import ReceivedEvent
from shared.db import Cursor
from shared.reasons import refusal_text, share_refusals

#: Fields of an entry that hold personal values (sealed); they go when the entry's scope is purged.
SEALED_FIELDS = ("content", "notice", "details", "description")


def _json(value: Any) -> str:
    def default(obj: Any) -> Any:
        if hasattr(obj, "to_json"):
            return obj.to_json()
        if isinstance(obj, UUID | datetime):
            return str(obj) if isinstance(obj, UUID) else obj.isoformat()
        if hasattr(obj, "isoformat"):
            return obj.isoformat()
        raise TypeError(type(obj).__name__)

    return json.dumps(value, default=default, separators=(",", ":"))


class CitizenOverview:
    def __init__(self, app: KetenApplication):
        self.app = app
        self.cases_table = f"{app.name}_overview_cases"
        self.entries_table = f"{app.name}_overview_entries"
        app.sql.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {self.cases_table} ("
                " subject TEXT NOT NULL, case_id TEXT NOT NULL, document TEXT NOT NULL,"
                " PRIMARY KEY (subject, case_id))",
                f"CREATE TABLE IF NOT EXISTS {self.entries_table} ("
                " subject TEXT NOT NULL, entry_id TEXT NOT NULL, case_id TEXT NOT NULL,"
                " kind TEXT NOT NULL, occurred_at TEXT NOT NULL, document TEXT NOT NULL,"
                " PRIMARY KEY (subject, entry_id))",
                f"CREATE INDEX IF NOT EXISTS {self.entries_table}_case ON {self.entries_table} (case_id)",
            ]
        )

    # -- writing ---------------------------------------------------------------------------
    def add_case(self, cur: Cursor, event: ReceivedEvent) -> None:
        data = event.data
        for subject in data["subjects"]:
            document = {
                "case_id": data["case_id"],
                "table": data["table"],
                "purpose": data["purpose"],
                "role": subject["role"],
                "minor": subject["minor"],
                "participants": data["participants"],
                "record_holder": data["record_holder"],
                "retention_class": data["retention_class"],
                "contact_point": data["contact_point"],
                "participation": data["participation"],
                "informed_beforehand": data["informed_beforehand"],
                "status": "registered",
                "registered_at": event.occurred_at,
                "ended_at": None,
                "outcome": None,
            }
            cur.execute(
                f"INSERT INTO {self.cases_table} (subject, case_id, document) VALUES (?, ?, ?)"
                " ON CONFLICT (subject, case_id) DO NOTHING",
                (subject["pseudonym"], str(data["case_id"]), _json(document)),
            )

    def end_case(
        self, cur: Cursor, case_id: UUID, status: str, ended_at: datetime, outcome: str | None
    ) -> None:
        rows = cur.execute(
            f"SELECT subject, document FROM {self.cases_table} WHERE case_id = ?", (str(case_id),)
        ).fetchall()
        for subject, raw in rows:
            document = json.loads(raw)
            document.update(status=status, ended_at=ended_at.isoformat(), outcome=outcome)
            cur.execute(
                f"UPDATE {self.cases_table} SET document = ? WHERE subject = ? AND case_id = ?",
                (_json(document), subject, str(case_id)),
            )

    def add_entry(
        self,
        cur: Cursor,
        subject: str,
        entry_id: UUID,
        kind: str,
        event: ReceivedEvent,
        extra: dict[str, Any] | None = None,
    ) -> None:
        document = {**event.data, **(extra or {}), "kind": kind, "occurred_at": event.occurred_at}
        cur.execute(
            f"INSERT INTO {self.entries_table} (subject, entry_id, case_id, kind, occurred_at, document)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subject, entry_id) DO NOTHING",
            (
                subject,
                str(entry_id),
                str(event.data["case_id"]),
                kind,
                event.occurred_at.isoformat(),
                _json(document),
            ),
        )

    def update_entry(self, cur: Cursor, subject: str, entry_id: UUID, changes: dict[str, Any]) -> None:
        row = cur.execute(
            f"SELECT document FROM {self.entries_table} WHERE subject = ? AND entry_id = ?",
            (subject, str(entry_id)),
        ).fetchone()
        if row is None:
            return
        document = {**json.loads(row[0]), **changes}
        cur.execute(
            f"UPDATE {self.entries_table} SET document = ? WHERE subject = ? AND entry_id = ?",
            (_json(document), subject, str(entry_id)),
        )

    def mark_purged(self, cur: Cursor, purge: ReceivedEvent) -> None:
        """Applies ``RecordsPurged``: the sealed values of the purged scope leave the overview;
        what happened (a share: from, to, what kind of data, on what ground, when) stays, with
        when and why it was purged."""
        data = purge.data
        mark = {"record_kind": data["record_kind"], "purged_at": purge.occurred_at, "reason": data["reason"]}
        case_id = str(data["case_id"])
        if data["subject"] is None:
            rows = cur.execute(
                f"SELECT subject, document FROM {self.cases_table} WHERE case_id = ?", (case_id,)
            ).fetchall()
        else:
            rows = cur.execute(
                f"SELECT subject, document FROM {self.cases_table} WHERE case_id = ? AND subject = ?",
                (case_id, data["subject"]),
            ).fetchall()
        for subject, raw in rows:
            document = json.loads(raw)
            document["purged"] = [
                *(p for p in document.get("purged", []) if p["record_kind"] != data["record_kind"]),
                mark,
            ]
            cur.execute(
                f"UPDATE {self.cases_table} SET document = ? WHERE subject = ? AND case_id = ?",
                (_json(document), subject, case_id),
            )
        if data["subject"] is None:
            return
        entries = cur.execute(
            f"SELECT entry_id, document FROM {self.entries_table} WHERE subject = ? AND case_id = ?",
            (data["subject"], case_id),
        ).fetchall()
        for entry_id, raw in entries:
            document = {k: v for k, v in json.loads(raw).items() if k not in SEALED_FIELDS}
            document.update(purged_at=purge.occurred_at, purge_reason=data["reason"])
            cur.execute(
                f"UPDATE {self.entries_table} SET document = ? WHERE subject = ? AND entry_id = ?",
                (_json(document), data["subject"], entry_id),
            )

    # -- reading ---------------------------------------------------------------------------
    def documents(self, subject: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The subject's case documents and entries (oldest first), personal values sealed."""
        with self.app.sql.transaction(commit=False) as cur:
            cases = cur.execute(
                f"SELECT document FROM {self.cases_table} WHERE subject = ? ORDER BY case_id", (subject,)
            ).fetchall()
            entries = cur.execute(
                f"SELECT document FROM {self.entries_table} WHERE subject = ? ORDER BY occurred_at, entry_id",
                (subject,),
            ).fetchall()
        return [json.loads(row[0]) for row in cases], [json.loads(row[0]) for row in entries]


def refusal_for_citizen(entry: dict[str, Any], catalogue: Catalogue, language: str) -> dict[str, Any]:
    """A refused share as its subject reads it: the reason in their language, from the same
    text the professional was answered with (``shared/reasons.yaml``), agencies by name. Only
    refusals ``visible_to_subject`` reach the overview at all (``record_share_refused``)."""
    code = entry.get("reason_code") or ""
    if code not in share_refusals():
        return entry
    return {
        **entry,
        "reason": refusal_text(code, entry.get("reason_details") or {}, catalogue, language),
        "from_name": catalogue.agency_name(entry["from_agency"]),
        "to_name": catalogue.agency_name(entry["to_agency"]),
    }
