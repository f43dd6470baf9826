"""Use cases of data sharing: decide a share request, correct what was shared, pass on its
erasure, learn cases and consents."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from services.data_sharing.domain import (
    RefusedShare,
    Share,
    ShareRequest,
    SubjectSay,
    check_may_correct,
    decide,
    share_id,
)
from shared import metrics
from shared.agencies import AgencyRegistry
from shared.application import KetenApplication
from shared.casefacts import CaseFacts
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.contracts.commands import CorrectShare, RequestShare
from shared.contracts.envelope import OutgoingMessage, ReceivedEvent
from shared.contracts.events.consent import (
    ConsentGiven,
    ConsentWithdrawn,
    ObjectionLodged,
    ObjectionWithdrawn,
    SafetyOverrideEnded,
    SafetyOverrideRecorded,
)
from shared.contracts.events.retention import RecordsPurged
from shared.contracts.inbox import inbox_message, inbox_message_id
from shared.crypto import ScopeShreddedError
from shared.db import Cursor
from shared.errors import Conflict, InvalidRequest, NotAuthorised, NotFound, domain_refusals
from shared.reasons import refusal_text, share_refusals
from shared.sealed import PURGED, KeyScope, Sealed
from shared.wire import seal_for


class DataSharing(KetenApplication):
    name = "data_sharing"

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)
        self.cases = CaseFacts(self)
        self.consent_table = f"{self.name}_consents"
        self.objection_table = f"{self.name}_objections"
        self.override_table = f"{self.name}_safety_overrides"
        self.sql.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {self.consent_table} ("
                " case_id TEXT NOT NULL, subject TEXT NOT NULL, consents TEXT NOT NULL,"
                " PRIMARY KEY (case_id, subject))",
                f"CREATE TABLE IF NOT EXISTS {self.objection_table} ("
                " case_id TEXT NOT NULL, subject TEXT NOT NULL, objection_id TEXT NOT NULL,"
                " PRIMARY KEY (case_id, subject))",
                f"CREATE TABLE IF NOT EXISTS {self.override_table} ("
                " override_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, override TEXT NOT NULL)",
            ]
        )

    # -- deciding ---------------------------------------------------------------------------
    def request_share(
        self, command: RequestShare, correlation_id: str | None = None
    ) -> list[Share | RefusedShare]:
        """Decides a ``RequestShareSchema`` command, one decision per recipient, all recorded.

        Malformed requests (unknown case, category or agency, a person not in the case, a
        sender not at the table) change nothing and raise; everything else is decided and
        recorded, allowed or refused. Repeating a request returns the decisions on record.
        """
        case = self.cases.get(command.case_id)
        if case is None:
            raise NotFound("unknown_case", "no case with this id (yet)", "case_id")
        agency = command.agency
        if not case.takes_part(agency):
            raise NotAuthorised("not_a_participant", "your agency does not take part in this case", "agency")
        if case.status == "registered":
            # Not a decision yet, like an unknown case: the activation may still be on its way.
            raise Conflict(
                "case_not_active", "the case is not active (yet); activate it, then retry", "case_id"
            )
        for code in command.categories:
            if code not in self.catalogue.categories:
                raise InvalidRequest("unknown_category", f"unknown data category {code}", "categories")
        for other in [*command.to_agencies, command.from_agency or agency]:
            if other not in self.catalogue.agencies:
                raise InvalidRequest("unknown_agency", f"unknown agency {other}", "to_agencies")
        subject = command.subject
        if subject not in case.subjects:
            raise InvalidRequest(
                "not_a_subject", "this person is not a data subject of the case", "subject_bsn"
            )
        if command.direction == "pull":
            senders, recipients = [command.from_agency or ""], [agency]
        else:
            senders, recipients = [agency], list(command.to_agencies)
        say = self._subject_say(case.case_id, subject)
        today = datetime.now(UTC).date()
        decisions: list[Share | RefusedShare] = []
        new: list[Share | RefusedShare] = []
        for sender in senders:
            for recipient in recipients:
                existing = self._find_decision(command.request_id, recipient)
                if existing is not None:
                    decisions.append(existing)
                    continue
                request = ShareRequest(
                    request_id=command.request_id,
                    case_id=case.case_id,
                    subject=subject,
                    from_agency=sender,
                    to_agency=recipient,
                    categories=command.categories,
                    purpose=command.purpose,
                    form=command.form,
                    meeting_id=command.meeting_id,
                    direction=command.direction,
                    special_grounds=dict(command.special_grounds),
                )
                decision = decide(request, case, say, self.catalogue, today)
                common: dict[str, Any] = {
                    "request_id": request.request_id,
                    "case_id": case.case_id,
                    "subject": subject,
                    "from_agency": sender,
                    "to_agency": recipient,
                    "categories": request.categories,
                    "purpose": request.purpose,
                    "catalogue_version": self.catalogue.version,
                    "correlation_id": correlation_id or str(request.request_id),
                }
                outcome: Share | RefusedShare
                if decision.allowed:
                    outcome = Share(
                        **common,
                        sender_ground=decision.sender_ground or "",
                        recipient_ground=decision.recipient_ground or "",
                        special_grounds=request.special_grounds,
                        form=request.form,
                        meeting_id=request.meeting_id,
                        content=self.seal(
                            KeyScope(case.case_id, subject),
                            {"content": command.content, "reference": command.content_reference},
                        ),
                        direction=request.direction,
                        contact_point=dict(case.contact_point),
                        override_id=UUID(decision.override_id) if decision.override_id else None,
                    )
                else:
                    outcome = RefusedShare(
                        **common,
                        reason_code=decision.reason_code,
                        reason=refusal_text(decision.reason_code, decision.reason_details, self.catalogue),
                        visible_to_subject=share_refusals()[decision.reason_code].visible_to_subject,
                        reason_details=dict(decision.reason_details),
                        direction=request.direction,
                    )
                decisions.append(outcome)
                new.append(outcome)
        if new:
            self.save(*new)
            for outcome in new:
                if isinstance(outcome, Share):
                    metrics.share_decisions.labels("shared", "allowed").inc()
                else:
                    metrics.share_decisions.labels("refused", outcome.reason_code).inc()
        return decisions

    def _find_decision(self, request_id: UUID, to_agency: str) -> Share | RefusedShare | None:
        try:
            return self.repository.get(share_id(request_id, to_agency))
        except AggregateNotFoundError:
            return None

    # -- correcting what was shared (rule 6) ------------------------------------------------
    def correct_share(self, command: CorrectShare, correlation_id: str | None = None) -> list[Share]:
        """Records a ``CorrectShareSchema`` command: the corrected content, sealed like the
        original, on every share the original content went out in (each recipient of the
        request), so that each recipient is told. Returns those shares.

        Unknown share: 404; refused share: 409; neither its sender nor the record holder: 403;
        its records purged: 409. Repeating a correction id records nothing new.
        """
        decision = self._find_decision_by_id(command.share_id)
        agency = command.agency
        case = self.cases.get(decision.case_id)
        # before anything else: another agency learns nothing of the request, not even a refusal
        with domain_refusals():
            check_may_correct(decision.from_agency, agency, case.record_holder if case else None)
        share = self._as_share(decision)
        if command.reason_code not in self.catalogue.correction_reasons:
            raise InvalidRequest("unknown_reason", "not a reason for a correction", "reason_code")
        shares = self._shares_of_request(share.request_id)
        correction_id = command.correction_id
        if all(other.has_correction(correction_id) for other in shares):
            return shares
        if share.erasure_passed_on or self._is_purged(share.content):
            raise Conflict(
                "share_purged", "the share's records were purged; nothing is left to correct", "share_id"
            )
        try:
            content = self.seal(
                KeyScope(share.case_id, share.subject),
                {"content": command.content, "reference": command.content_reference},
            )
        except ScopeShreddedError:
            raise Conflict(
                "share_purged", "the share's records were purged; nothing is left to correct", "share_id"
            ) from None
        for other in shares:
            other.correct(
                correction_id,
                corrected_by=agency,
                reason_code=command.reason_code,
                content=content,
                correlation_id=correlation_id or str(correction_id),
            )
        self.save(*shares)
        return shares

    def _find_share(self, share_id: UUID) -> Share:
        return self._as_share(self._find_decision_by_id(share_id))

    def _find_decision_by_id(self, share_id: UUID) -> Share | RefusedShare:
        try:
            found: Share | RefusedShare = self.repository.get(share_id)
        except AggregateNotFoundError:
            raise NotFound("unknown_share", "no share with this id", "share_id") from None
        return found

    @staticmethod
    def _as_share(found: Share | RefusedShare) -> Share:
        if not isinstance(found, Share):
            raise Conflict(
                "share_refused", "this share was refused: nothing was shared to correct", "share_id"
            )
        return found

    def _shares_of_request(self, request_id: UUID) -> list[Share]:
        """Every allowed share of one request: the same content went to each of their recipients.
        Share ids follow from the request and the recipient, so the catalogue's agencies find them."""
        found = (self._find_decision(request_id, agency) for agency in sorted(self.catalogue.agencies))
        return [share for share in found if isinstance(share, Share)]

    def _is_purged(self, content: Sealed | None) -> bool:
        """Asks the key store itself: a cached key may outlive a purge until it is reported."""
        return content is not None and not isinstance(self.vault.keys.load(content.key_id), bytes)

    # -- telling the recipients ---------------------------------------------------------------
    def inbox_messages(self, domain_event: Any) -> list[OutgoingMessage]:
        """What a share's events tell its recipient: the share and each correction, with the
        content sealed to the recipient's own key (readable by nobody on the way: broker, dead
        letters), and that the platform purged its records so the recipient erases its copy."""
        kind = type(domain_event).__qualname__
        share_id = domain_event.originator_id
        if kind == "Share.DataShared":
            name, message_id = "ShareReceived", inbox_message_id("share", share_id)
            data = {**vars(domain_event), "share_id": share_id, "shared_at": domain_event.timestamp}
        elif kind == "Share.ShareCorrected":
            name = "ShareCorrected"
            message_id = inbox_message_id("correction", share_id, domain_event.correction_id)
            data = {**vars(domain_event), "share_id": share_id, "corrected_at": domain_event.timestamp}
        elif kind == "Share.ErasurePassedOn":
            data = {**vars(domain_event), "share_id": share_id}
            return [
                inbox_message(
                    recipient,
                    "ShareErasureRequired",
                    data,
                    message_id=inbox_message_id("erasure", share_id, recipient),
                    occurred_at=domain_event.timestamp,
                )
                for recipient in domain_event.recipients
            ]
        else:
            return []
        data.update(self._content_for(domain_event.to_agency, domain_event))
        return [
            inbox_message(
                domain_event.to_agency,
                name,
                data,
                message_id=message_id,
                correlation_id=domain_event.correlation_id,
                occurred_at=domain_event.timestamp,
            )
        ]

    def _content_for(self, agency: str, domain_event: Any) -> dict[str, Any]:
        """The event's content sealed to ``agency``'s current key, or why it is withheld."""
        key = self.agencies.current_key(agency)
        opened = self.vault.open(domain_event.content)
        case = self.cases.get(domain_event.case_id)
        subject = case.subjects.get(domain_event.subject) if case else None
        sealed, withheld = None, None
        if key is None:
            withheld = "no_key"
        elif opened is PURGED:
            withheld = "purged"
        else:
            sealed = seal_for(
                key.encryption_public_key,
                {**(opened or {}), "subject": {"role": subject.role if subject else None}},
            )
        return {"key_id": key.key_id if key else None, "sealed_content": sealed, "content_withheld": withheld}

    @cached_property
    def agencies(self) -> AgencyRegistry:
        return AgencyRegistry.for_settings(self.settings)

    # -- learning from other services -------------------------------------------------------
    def _subject_say(self, case_id: UUID, subject: str) -> SubjectSay:
        with self.sql.transaction(commit=False) as cur:
            consents = cur.execute(
                f"SELECT consents FROM {self.consent_table} WHERE case_id = ? AND subject = ?",
                (str(case_id), subject),
            ).fetchone()
            objection = cur.execute(
                f"SELECT objection_id FROM {self.objection_table} WHERE case_id = ? AND subject = ?",
                (str(case_id), subject),
            ).fetchone()
            overrides = cur.execute(
                f"SELECT override FROM {self.override_table} WHERE case_id = ? ORDER BY override_id",
                (str(case_id),),
            ).fetchall()
        return SubjectSay(
            consents=tuple(json.loads(consents[0])) if consents else (),
            objection_id=objection[0] if objection else None,
            overrides=tuple(json.loads(row[0]) for row in overrides),
        )

    def record_consent_given(self, event: ReceivedEvent[ConsentGiven]) -> None:
        data = event.data
        consent = {
            "purpose": data.purpose,
            "categories": list(data.categories),
            "recipients": list(data.recipients),
            "valid_until": data.valid_until.isoformat(),
        }

        def write(cur: Cursor) -> None:
            row = cur.execute(
                f"SELECT consents FROM {self.consent_table} WHERE case_id = ? AND subject = ?",
                (str(data.case_id), data.subject),
            ).fetchone()
            consents = [*json.loads(row[0]), consent] if row else [consent]
            cur.execute(
                f"INSERT INTO {self.consent_table} (case_id, subject, consents) VALUES (?, ?, ?)"
                " ON CONFLICT (case_id, subject) DO UPDATE SET consents = excluded.consents",
                (str(data.case_id), data.subject, json.dumps(consents)),
            )

        self.write_tracked(event.tracking, write)

    def record_consent_withdrawn(self, event: ReceivedEvent[ConsentWithdrawn]) -> None:
        data = event.data

        def write(cur: Cursor) -> None:
            cur.execute(
                f"DELETE FROM {self.consent_table} WHERE case_id = ? AND subject = ?",
                (str(data.case_id), data.subject),
            )

        self.write_tracked(event.tracking, write)

    def record_objection(self, event: ReceivedEvent[ObjectionLodged | ObjectionWithdrawn]) -> None:
        """An objection lodged is in force until withdrawn (``ObjectionWithdrawn`` of its id)."""
        data = event.data
        key = (str(data.case_id), data.subject)

        def write(cur: Cursor) -> None:
            if isinstance(data, ObjectionLodged):
                cur.execute(
                    f"INSERT INTO {self.objection_table} (case_id, subject, objection_id) VALUES (?, ?, ?)"
                    " ON CONFLICT (case_id, subject) DO UPDATE SET objection_id = excluded.objection_id",
                    (*key, str(data.objection_id)),
                )
            else:
                cur.execute(
                    f"DELETE FROM {self.objection_table}"
                    " WHERE case_id = ? AND subject = ? AND objection_id = ?",
                    (*key, str(data.objection_id)),
                )

        self.write_tracked(event.tracking, write)

    def record_safety_override(
        self, event: ReceivedEvent[SafetyOverrideRecorded | SafetyOverrideEnded]
    ) -> None:
        """Keeps each override's scope and end (not its sealed reasons: decisions need none)."""
        data = event.data
        override_id = str(data.override_id)

        def write(cur: Cursor) -> None:
            if isinstance(data, SafetyOverrideRecorded):
                override = {
                    "override_id": override_id,
                    "subjects": list(data.subjects),
                    "categories": list(data.categories),
                    "recipients": list(data.recipients),
                    "ends_on": data.ends_on.isoformat(),
                    "ended": False,
                }
                cur.execute(
                    f"INSERT INTO {self.override_table} (override_id, case_id, override) VALUES (?, ?, ?)"
                    " ON CONFLICT (override_id) DO NOTHING",
                    (override_id, str(data.case_id), json.dumps(override)),
                )
                return
            row = cur.execute(
                f"SELECT override FROM {self.override_table} WHERE override_id = ?", (override_id,)
            ).fetchone()
            if row is not None:
                cur.execute(
                    f"UPDATE {self.override_table} SET override = ? WHERE override_id = ?",
                    (json.dumps({**json.loads(row[0]), "ended": True}), override_id),
                )

        self.write_tracked(event.tracking, write)

    def record_records_purged(self, event: ReceivedEvent[RecordsPurged]) -> None:
        """Forgets the purged scope: the subject's consents (all of the case's once nothing
        personal is left) and the subject's details in the case facts. Passes the erasure on to
        the recipients of each purged share (rule 6), once: ``ErasurePassedOn`` is saved with
        the tracking record, so a redelivered purge passes nothing on again."""
        data = event.data
        passed_on = []
        if data.record_kind == "share_records":
            for record_id in data.record_ids:
                try:
                    share = self._find_share(UUID(record_id))
                except (NotFound, Conflict):
                    continue  # not an allowed share: nothing went to anyone
                if share.pass_on_erasure(data.reason, event.occurred_at):
                    passed_on.append(share)

        def write(cur: Cursor) -> None:
            self.cases.forget_purged(cur, event)
            if data.complete:
                for table in (self.consent_table, self.objection_table, self.override_table):
                    cur.execute(f"DELETE FROM {table} WHERE case_id = ?", (str(data.case_id),))
            elif data.subject:
                cur.execute(
                    f"DELETE FROM {self.consent_table} WHERE case_id = ? AND subject = ?",
                    (str(data.case_id), data.subject),
                )

        self.save_tracked(event.tracking, *passed_on, write=write)
        self.forget_keys(event)
