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
from shared.contracts.events.case_registration import (
    CaseActivated,
    CaseClosed,
    CaseRegistered,
    CaseResumed,
    CaseStopped,
    ParticipantAdded,
    ParticipantRemoved,
)
from shared.contracts.events.consent import (
    ConsentGiven,
    ConsentWithdrawn,
    ObjectionLodged,
    ObjectionWithdrawn,
    SafetyOverrideEnded,
    SafetyOverrideRecorded,
)
from shared.contracts.events.data_sharing import DataShared, ErasurePassedOn, ShareCorrected, ShareRefused
from shared.contracts.events.retention import ErasureGranted, ErasureRefused, RecordsPurged
from shared.contracts.typed import plain
from shared.crypto import ScopeShreddedError
from shared.db import Cursor
from shared.reasons import refusal_text, share_refusals
from shared.sealed import PURGED, KeyScope

#: Fields of an entry that hold personal values (sealed); they go when the entry's scope is purged.
SEALED_FIELDS = ("content", "notice", "details", "description", "reason", "explanation")


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


#: The notification's status in the overview after each of its events.
NOTIFICATION_STATUS = {
    "NotificationDeferred": "deferred",
    "NotificationReleased": "scheduled",
    "DeliveryAttempted": "sending",
    "NotificationFailed": "retrying",
    "NotificationRerouted": "scheduled",
    "NotificationSent": "sent",
}


class CitizenOverview:
    def __init__(self, app: KetenApplication):
        self.app = app
        self.cases_table = f"{app.name}_overview_cases"
        self.entries_table = f"{app.name}_overview_entries"
        self.notifications_table = f"{app.name}_overview_notifications"
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
                f"CREATE INDEX IF NOT EXISTS {self.entries_table}_entry ON {self.entries_table} (entry_id)",
                f"CREATE TABLE IF NOT EXISTS {self.notifications_table} ("
                " notification_id TEXT PRIMARY KEY, subject TEXT NOT NULL, entry_id TEXT NOT NULL)",
            ]
        )

    # -- applying events: the one place the projection changes, live and on a rebuild ------
    #: The other services' events the overview follows.
    EVENTS = (
        "CaseRegistered",
        "CaseActivated",
        "CaseStopped",
        "CaseResumed",
        "CaseClosed",
        "ParticipantAdded",
        "ParticipantRemoved",
        "ConsentGiven",
        "ConsentWithdrawn",
        "ObjectionLodged",
        "ObjectionWithdrawn",
        "SafetyOverrideRecorded",
        "SafetyOverrideEnded",
        "DataShared",
        "ShareRefused",
        "ShareCorrected",
        "ErasurePassedOn",
        "RecordsPurged",
        "ErasureGranted",
        "ErasureRefused",
    )

    def apply(self, cur: Cursor, event: ReceivedEvent[Any]) -> None:
        """Applies one event of another service to the overview."""
        data = event.data
        if isinstance(data, CaseRegistered):
            self.add_case(cur, event)
        elif isinstance(data, CaseActivated):
            self.change_case(cur, data.case_id, None, {"status": "active"})
        elif isinstance(data, CaseStopped | CaseResumed):
            status = "stopped" if isinstance(data, CaseStopped) else "active"
            self.change_case(cur, data.case_id, data.subject, {"status": status})
        elif isinstance(data, CaseClosed):
            self.end_case(cur, data.case_id, "closed", event.occurred_at, data.outcome)
        elif isinstance(data, ParticipantAdded):
            joined = {**plain(data.participant), "added_at": event.occurred_at.isoformat()}
            self.change_case(cur, data.case_id, None, {}, add_participant=joined)
        elif isinstance(data, ParticipantRemoved):
            self.change_case(cur, data.case_id, None, {}, remove_participant=(data.agency, event.occurred_at))
        elif isinstance(data, ConsentGiven):
            self.add_entry(cur, data.subject, event.message_id, "consent", event, {"status": "given"})
        elif isinstance(data, ConsentWithdrawn):
            self.change_entries(
                cur,
                {"status": "withdrawn", "withdrawn_at": event.occurred_at},
                subject=data.subject,
                case_id=data.case_id,
                kind="consent",
            )
        elif isinstance(data, ObjectionLodged):
            self.add_entry(cur, data.subject, data.objection_id, "objection", event, {"status": "lodged"})
        elif isinstance(data, ObjectionWithdrawn):
            self.change_entries(
                cur,
                {"status": "withdrawn", "withdrawn_at": event.occurred_at},
                subject=data.subject,
                entry_id=data.objection_id,
            )
        elif isinstance(data, SafetyOverrideRecorded):
            # The professional's own reasons and the deferral's stay out: the citizen is owed the
            # explanation, and the override only once it is no longer deferred.
            shown = {k: v for k, v in plain(data).items() if k not in ("deferral", "reasons", "subjects")}
            override = {"status": "active", "deferred": data.deferral is not None}
            for subject in data.subjects:
                explained = {**shown, "explanation": self._for_subject(data, subject)}
                self.add_entry(cur, subject, data.override_id, "override", event, override, data=explained)
        elif isinstance(data, SafetyOverrideEnded):
            self.change_entries(
                cur,
                {"status": "ended", "ended_at": event.occurred_at, "end_reason_code": data.reason_code},
                entry_id=data.override_id,
            )
        elif isinstance(data, DataShared):
            self.add_entry(cur, data.subject, data.share_id, "share", event)
        elif isinstance(data, ShareRefused):
            if data.visible_to_subject:
                self.add_entry(cur, data.subject, data.share_id, "refusal", event)
        elif isinstance(data, ShareCorrected):
            self.correct_share(cur, event)
        elif isinstance(data, ErasurePassedOn):
            # The recipients were told to erase their own copy (rule 6): the citizen sees it.
            passed_on = {"at": data.purged_at, "recipients": list(data.recipients), "reason": data.reason}
            self.change_entries(cur, {"erasure_passed_on": passed_on}, entry_id=data.share_id, kind="share")
        elif isinstance(data, RecordsPurged):
            self.mark_purged(cur, event)
        elif isinstance(data, ErasureGranted | ErasureRefused):
            decision = {"decision": "granted" if isinstance(data, ErasureGranted) else "refused"}
            self.add_entry(cur, data.subject, event.message_id, "erasure", event, decision)

    def _for_subject(self, data: SafetyOverrideRecorded, subject: str) -> Any:
        """The override's explanation sealed again under the subject's own key: consent seals it
        under the case's key, which goes with the minutes after weeks, while the subject's share
        records, which the explanation is owed for, are kept for years."""
        opened = self.app.vault.open(data.explanation)
        if opened is None or opened is PURGED:
            return data.explanation
        try:
            return self.app.seal(KeyScope(data.case_id, subject), opened)
        except ScopeShreddedError:
            return None

    def apply_own(self, cur: Cursor, domain_event: Any) -> None:
        """Applies one of the notification service's own events: whether and how the subject
        was told of a share, and whether an override may be shown yet."""
        name = type(domain_event).__name__
        at = domain_event.timestamp
        if name == "DeferralEnded":
            self.change_entries(
                cur, {"deferred": False, "deferral_ended_at": at}, entry_id=domain_event.override_id
            )
        elif name == "NotificationScheduled":
            cur.execute(
                f"INSERT INTO {self.notifications_table} (notification_id, subject, entry_id)"
                " VALUES (?, ?, ?) ON CONFLICT (notification_id) DO NOTHING",
                (str(domain_event.originator_id), domain_event.subject, str(domain_event.share_id)),
            )
            told = {"id": domain_event.originator_id, "channel": domain_event.channel, "status": "scheduled"}
            self._change_notification(cur, domain_event.originator_id, {**told, "at": at})
        elif name in NOTIFICATION_STATUS:
            changes: dict[str, Any] = {"status": NOTIFICATION_STATUS[name], "at": at}
            if name == "NotificationReleased":
                changes["was_deferred"] = True
            elif name == "NotificationFailed":
                changes["retry_at"] = domain_event.retry_at
            elif name == "NotificationRerouted":
                changes["channel"] = domain_event.to_channel
            elif name == "NotificationSent":
                changes["status"] = "delivered" if domain_event.channel == "portal" else "sent"
            self._change_notification(cur, domain_event.originator_id, changes)

    def _change_notification(self, cur: Cursor, notification_id: UUID, changes: dict[str, Any]) -> None:
        row = cur.execute(
            f"SELECT subject, entry_id FROM {self.notifications_table} WHERE notification_id = ?",
            (str(notification_id),),
        ).fetchone()
        if row is None:
            return
        subject, entry_id = row
        document = self._entry(cur, subject, entry_id)
        if document is not None:
            told = json.loads(_json({**document.get("notification", {}), **changes}))
            self.update_entry(cur, subject, entry_id, {"notification": told})

    # -- writing ---------------------------------------------------------------------------
    def add_case(self, cur: Cursor, event: ReceivedEvent[CaseRegistered]) -> None:
        data = event.data
        for subject in data.subjects:
            document = {
                "case_id": data.case_id,
                "table": data.table,
                "purpose": data.purpose,
                "role": subject.role,
                "minor": subject.minor,
                "participants": plain(data.participants),
                "record_holder": data.record_holder,
                "retention_class": data.retention_class,
                "contact_point": plain(data.contact_point),
                "participation": data.participation,
                "informed_beforehand": data.informed_beforehand,
                "status": "registered",
                "registered_at": event.occurred_at,
                "ended_at": None,
                "outcome": None,
            }
            cur.execute(
                f"INSERT INTO {self.cases_table} (subject, case_id, document) VALUES (?, ?, ?)"
                " ON CONFLICT (subject, case_id) DO NOTHING",
                (subject.pseudonym, str(data.case_id), _json(document)),
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
        event: ReceivedEvent[Any],
        extra: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        document = {**(plain(event.data) if data is None else data), **(extra or {}), "kind": kind}
        document["occurred_at"] = event.occurred_at
        cur.execute(
            f"INSERT INTO {self.entries_table} (subject, entry_id, case_id, kind, occurred_at, document)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subject, entry_id) DO NOTHING",
            (
                subject,
                str(entry_id),
                str(event.data.case_id),
                kind,
                event.occurred_at.isoformat(),
                _json(document),
            ),
        )

    def _entry(self, cur: Cursor, subject: str, entry_id: str | UUID) -> dict[str, Any] | None:
        row = cur.execute(
            f"SELECT document FROM {self.entries_table} WHERE subject = ? AND entry_id = ?",
            (subject, str(entry_id)),
        ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def correct_share(self, cur: Cursor, event: ReceivedEvent[ShareCorrected]) -> None:
        """A share's content was corrected (and the correction passed on to its recipient): the
        citizen reads the corrected content, and when and why it was corrected. Repeat-safe by
        the correction's id."""
        data = event.data
        document = self._entry(cur, data.subject, data.share_id)
        if document is None:
            return
        corrections = document.get("corrections", [])
        if any(c["correction_id"] == str(data.correction_id) for c in corrections):
            return
        correction = {
            "correction_id": str(data.correction_id),
            "at": event.occurred_at.isoformat(),
            "by": data.corrected_by,
            "reason_code": data.reason_code,
        }
        changes: dict[str, Any] = {"corrections": [*corrections, correction]}
        if data.content is not None:
            changes["content"] = data.content
        self.update_entry(cur, data.subject, data.share_id, changes)

    def update_entry(self, cur: Cursor, subject: str, entry_id: str | UUID, changes: dict[str, Any]) -> None:
        document = self._entry(cur, subject, entry_id)
        if document is None:
            return
        cur.execute(
            f"UPDATE {self.entries_table} SET document = ? WHERE subject = ? AND entry_id = ?",
            (_json({**document, **changes}), subject, str(entry_id)),
        )

    def change_entries(
        self,
        cur: Cursor,
        changes: dict[str, Any],
        subject: str | None = None,
        entry_id: UUID | None = None,
        case_id: UUID | None = None,
        kind: str | None = None,
    ) -> None:
        """Changes every entry that matches all the given criteria."""
        criteria = {"subject": subject, "entry_id": entry_id, "case_id": case_id, "kind": kind}
        given = {column: str(value) for column, value in criteria.items() if value is not None}
        where = " AND ".join(f"{column} = ?" for column in given)
        rows = cur.execute(
            f"SELECT subject, entry_id FROM {self.entries_table} WHERE {where}", tuple(given.values())
        ).fetchall()
        for row_subject, row_entry in rows:
            self.update_entry(cur, row_subject, row_entry, changes)

    def change_case(
        self,
        cur: Cursor,
        case_id: UUID,
        subject: str | None,
        changes: dict[str, Any],
        add_participant: dict[str, Any] | None = None,
        remove_participant: tuple[str, datetime] | None = None,
    ) -> None:
        """Changes the case's document of one subject, or of every subject when ``subject`` is None."""
        query = f"SELECT subject, document FROM {self.cases_table} WHERE case_id = ?"
        rows = cur.execute(
            query + (" AND subject = ?" if subject else ""),
            (str(case_id), subject) if subject else (str(case_id),),
        ).fetchall()
        for row_subject, raw in rows:
            document = {**json.loads(raw), **changes}
            if add_participant is not None:
                document["participants"] = [
                    *(p for p in document["participants"] if p["agency"] != add_participant["agency"]),
                    add_participant,
                ]
            if remove_participant is not None:
                agency, at = remove_participant
                for participant in document["participants"]:
                    if participant["agency"] == agency:
                        participant["removed_at"] = at.isoformat()
            cur.execute(
                f"UPDATE {self.cases_table} SET document = ? WHERE subject = ? AND case_id = ?",
                (_json(document), row_subject, str(case_id)),
            )

    def clear(self, cur: Cursor) -> None:
        """Empties the projection, before a rebuild."""
        for table in (self.cases_table, self.entries_table, self.notifications_table):
            cur.execute(f"DELETE FROM {table}")

    def mark_purged(self, cur: Cursor, purge: ReceivedEvent[RecordsPurged]) -> None:
        """Applies ``RecordsPurged``: the sealed values of the purged scope leave the overview;
        what happened (a share: from, to, what kind of data, on what ground, when) stays, with
        when and why it was purged."""
        data = purge.data
        mark = {"record_kind": data.record_kind, "purged_at": purge.occurred_at, "reason": data.reason}
        case_id = str(data.case_id)
        if data.subject is None:
            rows = cur.execute(
                f"SELECT subject, document FROM {self.cases_table} WHERE case_id = ?", (case_id,)
            ).fetchall()
        else:
            rows = cur.execute(
                f"SELECT subject, document FROM {self.cases_table} WHERE case_id = ? AND subject = ?",
                (case_id, data.subject),
            ).fetchall()
        for subject, raw in rows:
            document = json.loads(raw)
            document["purged"] = [
                *(p for p in document.get("purged", []) if p["record_kind"] != data.record_kind),
                mark,
            ]
            cur.execute(
                f"UPDATE {self.cases_table} SET document = ? WHERE subject = ? AND case_id = ?",
                (_json(document), subject, case_id),
            )
        if data.subject is None:
            return
        entries = cur.execute(
            f"SELECT entry_id, document FROM {self.entries_table} WHERE subject = ? AND case_id = ?",
            (data.subject, case_id),
        ).fetchall()
        for entry_id, raw in entries:
            document = {k: v for k, v in json.loads(raw).items() if k not in SEALED_FIELDS}
            document.update(purged_at=purge.occurred_at, purge_reason=data.reason)
            cur.execute(
                f"UPDATE {self.entries_table} SET document = ? WHERE subject = ? AND entry_id = ?",
                (_json(document), data.subject, entry_id),
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
    names = {
        "from_name": catalogue.agency_name(entry["from_agency"]),
        "to_name": catalogue.agency_name(entry["to_agency"]),
    }
    if code not in share_refusals():
        return {**entry, **names}
    return {
        **entry,
        **names,
        "reason": refusal_text(code, entry.get("reason_details") or {}, catalogue, language),
    }
