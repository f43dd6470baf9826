"""Use cases of data sharing: decide a share request, correct what was shared; and what other
services' events change here (cases, consents, objections, safety overrides, purges, whose
erasure is passed on).

Each use case takes its command as the service loaded it (a frozen dataclass from
``shared.contracts.commands``, the BSN already a pseudonym) and returns a small result
(``ShareDecisions``, ``CorrectionRecorded``), never an aggregate. The consents, objections and
safety overrides learnt from the consent service are kept in read-model tables of this
application and read back as the domain's ``GivenConsent`` and ``SafetyOverride``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, project_aggregate

from services.data_sharing.domain import (
    CorrectionAnswer,
    GivenConsent,
    InboxReceipt,
    RefusedShare,
    SafetyOverride,
    Share,
    ShareRequest,
    SubjectSay,
    check_may_correct,
    cite_provisions,
    decide_per_category,
    receipt_id,
    share_id,
)
from services.data_sharing.inbox import SealedToRecipient, erasures_required, share_corrected, share_received
from services.data_sharing.ledger import SIDES, Ledger, LedgerEntry, LedgerQuery
from shared import metrics
from shared.agencies import AgencyKey, AgencyRegistry
from shared.application import KetenApplication, Tracking
from shared.casefacts import CHUNK, CaseEvent, CaseFacts
from shared.caseview import CaseView, ContactPointFacts
from shared.catalogue import Catalogue, load_catalogue
from shared.config import Settings
from shared.contracts.commands import CorrectShare, GetLedger, GetShareProof, RequestShare
from shared.contracts.envelope import OutgoingMessage, ReceivedEvent
from shared.contracts.events.consent import (
    ConsentGiven,
    ConsentWithdrawn,
    ObjectionLodged,
    ObjectionToAgencyEnded,
    ObjectionToAgencyLodged,
    ObjectionWithdrawn,
    SafetyOverrideEnded,
    SafetyOverrideRecorded,
)
from shared.contracts.events.retention import RecordsPurged
from shared.contracts.inbox import inbox_message_id
from shared.crypto import ScopeShreddedError
from shared.db import Cursor
from shared.errors import Conflict, InvalidRequest, NotAuthorised, NotFound, domain_refusals
from shared.ldv import SHARE, Processing
from shared.reasons import refusal_text, share_refusals
from shared.sealed import PURGED, KeyScope, Sealed
from shared.tlog import ON_DEMAND_AGE, TransparencyLog
from shared.wire import seal_for


@dataclass(frozen=True)
class CategoryDecision:
    """What became of one category of a request for one recipient (``CategoryDecisionSchema``):
    shared, or refused and why; ``share_id`` is the decision on record that says so."""

    category: str
    outcome: str
    reason_code: str
    reason: str | None
    share_id: UUID


@dataclass(frozen=True)
class ShareDecision:
    """The decision for one recipient (``ShareDecisionSchema``): shared, refused, or ``partial``
    (some categories shared, others refused); a partial decision names its first refusal in
    ``reason_code`` and ``reason`` and every category's fate in ``categories``."""

    share_id: UUID
    to_agency: str
    outcome: str
    reason_code: str
    reason: str | None
    #: The safety override a share proceeds under despite the subject's objection.
    override_id: UUID | None
    categories: tuple[CategoryDecision, ...] = ()

    @classmethod
    def of(cls, decisions: Sequence[Share | RefusedShare], requested: Sequence[str] = ()) -> ShareDecision:
        """The recipient's decisions on one request, its first decision first (the share of the
        allowed categories, or the first refusal); each category in the order ``requested``."""
        first = decisions[0]
        refusals = [d for d in decisions if isinstance(d, RefusedShare)]
        order = {code: index for index, code in enumerate(requested)}
        per_category = tuple(
            sorted(
                (
                    CategoryDecision(code, "shared", "allowed", None, d.id)
                    if isinstance(d, Share)
                    else CategoryDecision(code, "refused", d.reason_code, d.reason, d.id)
                    for d in decisions
                    for code in d.categories
                ),
                key=lambda decided: order.get(decided.category, len(order)),
            )
        )
        if isinstance(first, Share):
            if not refusals:
                return cls(
                    first.id, first.to_agency, "shared", "allowed", None, first.override_id, per_category
                )
            # A partial answer leads with a refusal, so that nobody reads it as allowed.
            refusal = refusals[0]
            return cls(
                first.id,
                first.to_agency,
                "partial",
                refusal.reason_code,
                refusal.reason,
                first.override_id,
                per_category,
            )
        return cls(first.id, first.to_agency, "refused", first.reason_code, first.reason, None, per_category)


@dataclass(frozen=True)
class ShareDecisions:
    """What ``request_share`` answers (``ShareDecisionsSchema``): one decision per recipient."""

    request_id: UUID
    decisions: tuple[ShareDecision, ...]

    @property
    def outcome(self) -> str:
        """``shared`` when every recipient got every category, ``refused`` when none got any,
        else ``partial``."""
        outcomes = {decision.outcome for decision in self.decisions}
        return outcomes.pop() if len(outcomes) == 1 else "partial"


@dataclass(frozen=True)
class CorrectionPassedOn:
    """A share the correction went out in: one per recipient of the original content."""

    share_id: UUID
    to_agency: str


@dataclass(frozen=True)
class CorrectionRecorded:
    """What ``correct_share`` answers (``CorrectionRecordedSchema``)."""

    correction_id: UUID
    share_id: UUID
    passed_on_to: tuple[CorrectionPassedOn, ...]


@dataclass(frozen=True, kw_only=True)
class LedgerLine(LedgerEntry):
    """A ledger row as one agency reads it: which side of the share it was on."""

    side: str


@dataclass(frozen=True)
class AgencyLedger:
    """What ``get_ledger`` answers (``LedgerSchema``)."""

    agency: str
    since: date | None
    until: date | None
    entries: tuple[LedgerLine, ...]


@dataclass(frozen=True)
class ShareInLog:
    """What ``get_share_proof`` answers (``ShareProofSchema``): the decision's leaf in the
    verifiable log, proven against a signed head."""

    share_id: UUID
    verifiable_log: Mapping[str, Any]


@dataclass(frozen=True)
class ReadForRound:
    """What a relay round read once for all its shares: the recipients' current keys (a
    rotation or revocation holds from the next round after its commit, as commands' keys per
    batch) and the shares' cases (for each subject's role)."""

    keys: Mapping[str, AgencyKey]
    cases: Mapping[UUID, CaseView]


class DataSharingUseCases(KetenApplication):
    """The use cases over data_sharing's event store, which holds the ``Share`` and
    ``RefusedShare`` aggregates, and over its read models: the case facts and what the
    subjects said (consents, objections, safety overrides)."""

    name = "data_sharing"
    processings = {
        "DataShared": Processing("share allowed", SHARE, actor="from_agency"),
        "ShareRefused": Processing("share refused", SHARE, actor="from_agency", ok=False),
        "ShareCorrected": Processing("correction passed on", "pass-on-correction", actor="corrected_by"),
        "ErasurePassedOn": Processing("erasure passed on", "pass-on-erasure"),
    }
    #: What its verifiable log holds (``shared.tlog``): the decisions the citizen's overview shows.
    logged_events = frozenset({"DataShared", "ShareRefused", "ShareCorrected", "ErasurePassedOn"})

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None):
        self.catalogue = catalogue or load_catalogue()
        super().__init__(settings)
        self.cases = CaseFacts(self)
        self.ledger = Ledger(self, self.catalogue)
        self.consent_table = f"{self.name}_consents"
        self.objection_table = f"{self.name}_objections"
        self.agency_objection_table = f"{self.name}_agency_objections"
        self.override_table = f"{self.name}_safety_overrides"
        self.sql.execute_script(
            [
                f"CREATE TABLE IF NOT EXISTS {self.consent_table} ("
                " case_id TEXT NOT NULL, subject TEXT NOT NULL, consents TEXT NOT NULL,"
                " PRIMARY KEY (case_id, subject))",
                f"CREATE TABLE IF NOT EXISTS {self.objection_table} ("
                " case_id TEXT NOT NULL, subject TEXT NOT NULL, objection_id TEXT NOT NULL,"
                " PRIMARY KEY (case_id, subject))",
                f"CREATE TABLE IF NOT EXISTS {self.agency_objection_table} ("
                " case_id TEXT NOT NULL, subject TEXT NOT NULL, agency TEXT NOT NULL,"
                " objection_id TEXT NOT NULL, PRIMARY KEY (case_id, subject, agency))",
                f"CREATE TABLE IF NOT EXISTS {self.override_table} ("
                " override_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, override TEXT NOT NULL)",
                f"CREATE INDEX IF NOT EXISTS {self.override_table}_case ON {self.override_table} (case_id)",
            ]
        )

    # -- the verifiable log -------------------------------------------------------------------
    def get_share_proof(self, command: GetShareProof) -> ShareInLog:
        """The proof that a decision the asking agency sent or received is in the log."""
        unknown = NotFound("share_not_found", "no share or refusal with this id for this agency", "share_id")
        try:
            decision: Share | RefusedShare = self.repository.get(command.share_id)
        except AggregateNotFoundError:
            raise unknown from None
        if command.agency not in (
            getattr(decision, "from_agency", None),
            getattr(decision, "to_agency", None),
        ):
            raise unknown  # the same answer as for no share: no one learns what others shared
        proofs = TransparencyLog.of(self).proofs_of_records([str(command.share_id)], ON_DEMAND_AGE)
        if str(command.share_id) not in proofs:
            raise Conflict(
                "not_logged_yet", "the decision is not in the verifiable log yet: ask again shortly"
            )
        return ShareInLog(command.share_id, proofs[str(command.share_id)])

    # -- deciding ---------------------------------------------------------------------------
    def request_share(self, command: RequestShare, correlation_id: str | None = None) -> ShareDecisions:
        """Decides a share request, one decision per recipient, all recorded.

        Malformed requests (unknown case, category or agency, a person not in the case, a
        sender not at the table) change nothing and raise; everything else is decided and
        recorded, allowed or refused. Repeating a request answers the decisions on record.
        """
        also_about = tuple(dict.fromkeys(other for other in command.also_about if other != command.subject))
        if command.direction == "pull":
            senders, recipients = [command.from_agency or ""], [command.agency]
        else:
            senders, recipients = [command.agency], list(command.to_agencies)
        # Which recipients' decisions are on record is read with the case facts (one round
        # trip): only a repeated request then replays its decisions.
        case, says, decided = self._facts_for_request(
            command.case_id,
            (command.subject, *also_about),
            [share_id(command.request_id, recipient) for recipient in recipients],
        )
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
        if any(other not in case.subjects for other in also_about):
            raise InvalidRequest(
                "not_a_subject",
                "a person the content is also about is not a data subject of the case",
                "also_about",
            )
        say = says[subject]
        others = {other: says[other] for other in also_about}
        today = datetime.now(UTC).date()
        answers: list[ShareDecision] = []
        new: list[Share | RefusedShare] = []
        for sender in senders:
            for recipient in recipients:
                on_record = (
                    self._decisions_on_record(command.request_id, recipient, command.categories)
                    if share_id(command.request_id, recipient) in decided
                    else []
                )
                if not on_record:
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
                        special_grounds=command.special_grounds,
                        also_about=also_about,
                    )
                    on_record = self._decide(request, case, say, others, today, command, correlation_id)
                    new.extend(on_record)
                answers.append(ShareDecision.of(on_record, command.categories))
        if new:
            self.save(*new)
            for outcome in new:
                if isinstance(outcome, Share):
                    metrics.share_decisions.labels("shared", "allowed").inc()
                else:
                    metrics.share_decisions.labels("refused", outcome.reason_code).inc()
        return ShareDecisions(command.request_id, tuple(answers))

    def _decide(
        self,
        request: ShareRequest,
        case: CaseView,
        say: SubjectSay,
        others: Mapping[str, SubjectSay],
        today: date,
        command: RequestShare,
        correlation_id: str | None,
    ) -> list[Share | RefusedShare]:
        """Decides each category of one recipient's request and puts each decision on record:
        the allowed categories as one share, each refusal with its own reason. A refusal beside
        a share is shown to the subject, whom the share is told anyway: a partial share never
        hides what was held back."""
        correlation = correlation_id or str(request.request_id)
        provisions = cite_provisions(request, case, self.catalogue)
        decided: list[Share | RefusedShare] = []
        for decision in decide_per_category(request, case, say, self.catalogue, today, also_about=others):
            if decision.allowed:
                scope = KeyScope(case.case_id, request.subject)
                decided.append(
                    Share.record(
                        request,
                        decision,
                        content=self.seal(
                            scope, {"content": command.content, "reference": command.content_reference}
                        ),
                        # Under the subject's key, like the content: it goes with the share's records.
                        contact_point=ContactPointFacts(
                            case.contact_point.agency, self.reseal(scope, case.contact_point.function)
                        ),
                        catalogue_version=self.catalogue.version,
                        correlation_id=correlation,
                        provisions=provisions,
                    )
                )
                continue
            partial = bool(decided) and isinstance(decided[0], Share)
            decided.append(
                RefusedShare.record(
                    request,
                    decision,
                    reason=refusal_text(decision.reason_code, dict(decision.reason_details), self.catalogue),
                    visible_to_subject=partial or share_refusals()[decision.reason_code].visible_to_subject,
                    catalogue_version=self.catalogue.version,
                    correlation_id=correlation,
                    part_of=decided[0].id if decided else None,
                    provisions=provisions,
                )
            )
        return decided

    def _decisions_on_record(
        self, request_id: UUID, to_agency: str, categories: Sequence[str]
    ) -> list[Share | RefusedShare]:
        """The recipient's decisions on a request already decided: its first decision, then the
        refusals that are part of it (named by their first category)."""
        first = self._find_decision(request_id, to_agency)
        if first is None:
            return []
        parts: list[Share | RefusedShare] = []
        for code in categories:
            try:
                part: RefusedShare = self.repository.get(share_id(request_id, to_agency, code))
            except AggregateNotFoundError:
                continue
            parts.append(part)
        return [first, *parts]

    def _find_decision(self, request_id: UUID, to_agency: str) -> Share | RefusedShare | None:
        try:
            found: Share | RefusedShare = self.repository.get(share_id(request_id, to_agency))
        except AggregateNotFoundError:
            return None
        return found

    # -- correcting what was shared (rule 6) ------------------------------------------------
    def correct_share(self, command: CorrectShare, correlation_id: str | None = None) -> CorrectionRecorded:
        """Records a correction: the corrected content, sealed like the original, on every
        share the original content went out in (each recipient of the request), so that each
        recipient is told. Answers those shares.

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
            return _correction_recorded(command, shares)
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
        answering = self._correction_answer(command, KeyScope(share.case_id, share.subject))
        for other in shares:
            other.correct(
                correction_id,
                corrected_by=agency,
                reason_code=command.reason_code,
                content=content,
                correlation_id=correlation_id or str(correction_id),
                answering=answering,
            )
        self.save(*shares)
        return _correction_recorded(command, shares)

    def _correction_answer(self, command: CorrectShare, scope: KeyScope) -> CorrectionAnswer | None:
        """The citizen's correction request the correction answers, if any (consent checks that
        it is one the agency must answer, about this subject and case, and answers it)."""
        if command.in_answer_to is None:
            return None
        reason = command.answer_reason
        return CorrectionAnswer(
            request_id=command.in_answer_to,
            answer=command.answer or "granted",
            reason=None if reason is None else self.seal(scope, {"nl": reason.nl, "en": reason.en}),
        )

    def _find_share(self, share_id: UUID) -> Share:
        return self._as_share(self._find_decision_by_id(share_id))

    def _find_decision_by_id(self, share_id: UUID) -> Share | RefusedShare:
        try:
            found: Share | RefusedShare = self.repository.get(share_id)
        except AggregateNotFoundError:
            raise NotFound("unknown_share", "no share with this id", "share_id") from None
        return found

    def _shares_by_id(self, share_ids: list[UUID]) -> list[Share]:
        """The allowed shares among ``share_ids`` (refused and unknown ones left out), their
        events read in one statement (PostgreSQL; one share at a time elsewhere)."""
        select_many = getattr(self.recorder, "select_events_of", None)
        if select_many is None or len(share_ids) < 2:
            found: list[Share | RefusedShare] = []
            for share_id in share_ids:
                try:
                    found.append(self._find_decision_by_id(share_id))
                except NotFound:
                    continue
        else:
            stored = select_many(share_ids)
            found = [
                cast(Share | RefusedShare, project_aggregate(None, map(self.mapper.to_domain_event, events)))
                for share_id in share_ids
                if (events := stored.get(share_id))
            ]
        return [share for share in found if isinstance(share, Share)]

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

    # -- accountability: the ledger ------------------------------------------------------------
    def get_ledger(self, command: GetLedger) -> AgencyLedger:
        """The sending agency's ledger: what it provided and received, refused included. Only
        its own (another agency's: 403); each row names no more than the agency was told."""
        agency = command.agency
        if command.of_agency not in (None, agency):
            raise NotAuthorised("not_your_ledger", "an agency reads its own ledger only", "of_agency")
        if command.since and command.until and command.since > command.until:
            raise InvalidRequest("invalid_period", "since is after until", "since")
        sides = SIDES if command.side == "both" else (command.side,)
        rows = self.ledger.entries(
            LedgerQuery(
                agency=agency,
                sides=sides,
                since=command.since,
                until=command.until,
                case_id=command.case_id,
                subject=command.subject,
            )
        )
        return AgencyLedger(
            agency,
            command.since,
            command.until,
            tuple(LedgerLine(side=row.side_of(agency), **vars(row)) for row in rows),
        )

    def rebuild_ledger(self) -> int:
        """Rebuilds the ledger from data_sharing's events alone; returns how many were read."""
        notifications = self.recorder.select_notifications(start=1, limit=10**9)
        return self.ledger.rebuild(self.mapper.to_domain_event(n) for n in notifications)

    def save(self, *objs: Any, **kwargs: Any) -> list[Any]:
        """Every save of this application goes through ``save_tracked``, so the ledger is
        written with the events it comes from."""
        self.save_tracked(None, *objs)
        return []

    def save_tracked(
        self,
        tracking: Tracking | None,
        *aggregates: Any,
        write: Callable[[Cursor], None] | None = None,
    ) -> None:
        new_events = [e for aggregate in aggregates for e in aggregate.pending_events]

        def write_all(cur: Cursor) -> None:
            if write is not None:
                write(cur)
            for domain_event in new_events:
                self.ledger.project(cur, domain_event)

        super().save_tracked(tracking, *aggregates, write=write_all)

    # -- telling the recipients ---------------------------------------------------------------
    def inbox_receipts(self, delivered: list[Any]) -> list[InboxReceipt]:
        """The receipts of shares whose ``ShareReceived`` the broker just confirmed into the
        recipient's inbox (the relay saves them with its position); none for a share whose
        receipt is on record already (the relay publishes again after a restart)."""
        shared = [e for e in delivered if isinstance(e, Share.DataShared)]
        on_record = self._stored_aggregates([receipt_id(e.originator_id) for e in shared])
        return [
            InboxReceipt(
                share_id=domain_event.originator_id,
                case_id=domain_event.case_id,
                to_agency=domain_event.to_agency,
                message_id=inbox_message_id("share", domain_event.originator_id),
            )
            for domain_event in shared
            if receipt_id(domain_event.originator_id) not in on_record
        ]

    def _stored_aggregates(self, ids: Sequence[UUID]) -> set[UUID]:
        """Which of ``ids`` have events in the store: one statement for all of them, instead
        of replaying each aggregate to learn that it exists."""
        if not ids:
            return set()
        recorder: Any = self.recorder
        if self.sql.dialect == "postgresql":
            table, keys = recorder.events_table, tuple(str(i) for i in ids)
        else:  # the library's SQLite recorder keeps ids as hex text
            table, keys = recorder.events_table_name, tuple(i.hex for i in ids)
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                f"SELECT DISTINCT originator_id FROM {table}"
                f" WHERE originator_id IN ({', '.join('?' for _ in ids)})",
                keys,
            ).fetchall()
        return {UUID(str(row[0])) for row in rows}

    def inbox_messages(
        self, domain_event: object, round_: ReadForRound | None = None
    ) -> list[OutgoingMessage]:
        """What a share's events tell its recipient: the share and each correction, with the
        content sealed to the recipient's own key (readable by nobody on the way: broker, dead
        letters), and that the platform purged its records so the recipient erases its copy.
        ``round_``: what a relay round read for all its events."""
        if isinstance(domain_event, Share.DataShared):
            return [share_received(domain_event, self._sealed_to_recipient(domain_event, round_))]
        if isinstance(domain_event, Share.ShareCorrected):
            return [share_corrected(domain_event, self._sealed_to_recipient(domain_event, round_))]
        if isinstance(domain_event, Share.ErasurePassedOn):
            return erasures_required(domain_event)
        return []

    def round_inbox_messages(self, domain_events: list[Any]) -> list[list[OutgoingMessage]]:
        """The round's recipients' current keys and its shares' cases are read once for the
        round (a statement each), not once per share."""
        shares = [
            event for event in domain_events if isinstance(event, Share.DataShared | Share.ShareCorrected)
        ]
        if not shares:
            return [self.inbox_messages(domain_event) for domain_event in domain_events]  # none reads
        keys = self.agencies.current_keys({event.to_agency for event in shares})
        # A share to a recipient without a key is told without content: its case is not read.
        sealed = [event.case_id for event in shares if event.to_agency in keys]
        cases = self.cases.get_many(list(dict.fromkeys(sealed))) if sealed else {}
        round_ = ReadForRound(keys=keys, cases=cases)
        return [self.inbox_messages(domain_event, round_) for domain_event in domain_events]

    def _sealed_to_recipient(
        self, shared: Share.DataShared | Share.ShareCorrected, round_: ReadForRound | None = None
    ) -> SealedToRecipient:
        """The event's content sealed to its recipient's current key, or why it is withheld;
        the key and the case read now, unless ``round_`` read them for the relay's round."""
        key = (
            self.agencies.current_key(shared.to_agency)
            if round_ is None
            else round_.keys.get(shared.to_agency)
        )
        if key is None:
            return SealedToRecipient(key_id=None, sealed_content=None, content_withheld="no_key")
        opened = self.vault.open(shared.content)
        if opened is PURGED:
            return SealedToRecipient(key_id=key.key_id, sealed_content=None, content_withheld="purged")
        case = self.cases.get(shared.case_id) if round_ is None else round_.cases.get(shared.case_id)
        subject = case.subjects.get(shared.subject) if case else None
        # The sealed plaintext: content and reference as sealed here, the subject's role, and
        # with a share the function of the case's contact point (free text, so never in the open).
        plaintext = {**(opened or {}), "subject": {"role": subject.role if subject else None}}
        if isinstance(shared, Share.DataShared):
            plaintext["contact_point"] = {"function": self.open_text(shared.contact.function)}
        sealed = seal_for(key.encryption_public_key, plaintext)
        return SealedToRecipient(key_id=key.key_id, sealed_content=sealed)

    @cached_property
    def agencies(self) -> AgencyRegistry:
        return AgencyRegistry.for_settings(self.settings)

    # -- learning from other services -------------------------------------------------------
    def record_case_event(self, event: ReceivedEvent[CaseEvent]) -> None:
        """What case_registration says of a case (registered, activated, stopped, resumed,
        closed, a participant added or removed) goes into the case facts decisions read."""
        self.cases.apply(event)

    def _subject_say(self, case_id: UUID, subject: str) -> SubjectSay:
        """What the subject said in the case, as the read models hold it."""
        return self._case_and_says(case_id, (subject,))[1][subject]

    def _case_and_says(
        self, case_id: UUID, subjects: Sequence[str]
    ) -> tuple[CaseView | None, dict[str, SubjectSay]]:
        """The case facts and what each of ``subjects`` said in the case, in one statement (one
        round trip): a share is decided on what the read models hold when it is asked, never on
        a copy kept in this process, so a replica that does not consume the events that change
        them decides the same (their consumer may run in another replica)."""
        case, says, _ = self._facts_for_request(case_id, subjects, ())
        return case, says

    def _facts_for_request(
        self, case_id: UUID, subjects: Sequence[str], decisions: Sequence[UUID]
    ) -> tuple[CaseView | None, dict[str, SubjectSay], set[UUID]]:
        """``_case_and_says``, and which of ``decisions`` (share ids) are on record, in the
        same statement."""
        case, marks = str(case_id), ", ".join("?" for _ in subjects)
        recorder: Any = self.recorder
        if self.sql.dialect == "postgresql":
            events, decision_keys = recorder.events_table, [str(i) for i in decisions]
        else:  # the library's SQLite recorder keeps ids as hex text
            events, decision_keys = recorder.events_table_name, [i.hex for i in decisions]
        decided_rows = (
            " UNION ALL SELECT 'decided', CAST(originator_id AS TEXT), NULL, NULL, NULL, NULL"
            f" FROM {events} WHERE originator_id IN ({', '.join('?' for _ in decisions)})"
            " AND originator_version = 1"
            if decisions
            else ""
        )
        with self.sql.transaction(commit=False) as cur:
            rows = cur.execute(
                "SELECT 'case', status, facts, registered_at, ended_at, outcome"
                f" FROM {self.cases.table} WHERE case_id = ?"
                " UNION ALL SELECT 'consents', subject, consents, NULL, NULL, NULL"
                f" FROM {self.consent_table} WHERE case_id = ? AND subject IN ({marks})"
                " UNION ALL SELECT 'objection', subject, objection_id, NULL, NULL, NULL"
                f" FROM {self.objection_table} WHERE case_id = ? AND subject IN ({marks})"
                " UNION ALL SELECT 'agency_objection', subject, agency, NULL, NULL, NULL"
                f" FROM {self.agency_objection_table} WHERE case_id = ? AND subject IN ({marks})"
                " UNION ALL SELECT 'override', override_id, override, NULL, NULL, NULL"
                f" FROM {self.override_table} WHERE case_id = ?" + decided_rows,
                (case, case, *subjects, case, *subjects, case, *subjects, case, *decision_keys),
            ).fetchall()
        view = None
        decided: set[UUID] = set()
        consents: dict[str, tuple[GivenConsent, ...]] = {}
        objections: dict[str, str] = {}
        objected_agencies: dict[str, set[str]] = {}
        overrides: list[tuple[str, str]] = []
        for kind, key, value, *rest in rows:
            if kind == "case":
                view = self.cases.view((case, key, value, *rest))
            elif kind == "consents":
                consents[key] = tuple(_consent_of(row) for row in json.loads(value))
            elif kind == "objection":
                objections[key] = value
            elif kind == "agency_objection":
                objected_agencies.setdefault(key, set()).add(str(value))
            elif kind == "decided":
                decided.add(UUID(str(key)))
            else:
                overrides.append((key, value))
        in_case = tuple(_override_of(json.loads(value)) for _, value in sorted(overrides))
        return view, self._says(subjects, consents, objections, objected_agencies, in_case), decided

    @staticmethod
    def _says(
        subjects: Sequence[str],
        consents: Mapping[str, tuple[GivenConsent, ...]],
        objections: Mapping[str, str],
        objected_agencies: Mapping[str, set[str]],
        in_case: tuple[SafetyOverride, ...],
    ) -> dict[str, SubjectSay]:
        return {
            subject: SubjectSay(
                consents=consents.get(subject, ()),
                objection_id=objections.get(subject),
                objected_agencies=frozenset(objected_agencies.get(subject, ())),
                overrides=in_case,
            )
            for subject in subjects
        }

    def record_consent_given(self, event: ReceivedEvent[ConsentGiven]) -> None:
        """A consent given is kept beside the subject's earlier ones, until withdrawn."""
        data = event.data
        consent = _consent_row(
            GivenConsent(
                purpose=data.purpose,
                categories=data.categories,
                recipients=data.recipients,
                valid_until=data.valid_until,
            )
        )

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
        """A withdrawal ends every consent the subject gave in the case."""
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

    def record_agency_objection(
        self, event: ReceivedEvent[ObjectionToAgencyLodged | ObjectionToAgencyEnded]
    ) -> None:
        """An objection to one agency's part is in force until ended (``ObjectionToAgencyEnded``
        of its id): shares about the subject from and to that agency are refused meanwhile."""
        data = event.data
        key = (str(data.case_id), data.subject, data.agency)

        def write(cur: Cursor) -> None:
            if isinstance(data, ObjectionToAgencyLodged):
                cur.execute(
                    f"INSERT INTO {self.agency_objection_table} (case_id, subject, agency, objection_id)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (case_id, subject, agency)"
                    " DO UPDATE SET objection_id = excluded.objection_id",
                    (*key, str(data.objection_id)),
                )
            else:
                cur.execute(
                    f"DELETE FROM {self.agency_objection_table}"
                    " WHERE case_id = ? AND subject = ? AND agency = ? AND objection_id = ?",
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
                override = SafetyOverride(
                    override_id=data.override_id,
                    subjects=data.subjects,
                    categories=data.categories,
                    recipients=data.recipients,
                    ends_on=data.ends_on,
                )
                cur.execute(
                    f"INSERT INTO {self.override_table} (override_id, case_id, override) VALUES (?, ?, ?)"
                    " ON CONFLICT (override_id) DO NOTHING",
                    (override_id, str(data.case_id), json.dumps(_override_row(override))),
                )
                return
            row = cur.execute(
                f"SELECT override FROM {self.override_table} WHERE override_id = ?", (override_id,)
            ).fetchone()
            if row is not None:
                ended = replace(_override_of(json.loads(row[0])), ended=True)
                cur.execute(
                    f"UPDATE {self.override_table} SET override = ? WHERE override_id = ?",
                    (json.dumps(_override_row(ended)), override_id),
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
            # Only allowed shares went to anyone; each is read once, all in one statement.
            for share in self._shares_by_id([UUID(record_id) for record_id in data.record_ids]):
                if share.pass_on_erasure(data.reason, event.occurred_at):
                    passed_on.append(share)

        def write(cur: Cursor) -> None:
            if data.complete:
                # Nothing personal of the case is left: its rows go, with those of every case
                # the consumer's batch forgets, in one statement per table.
                self.at_batch_end(cur, "forget purged cases", self._forget_cases, data.case_id)
            elif data.subject:
                self.cases.forget_subject(cur, data.case_id, data.subject)
                cur.execute(
                    f"DELETE FROM {self.consent_table} WHERE case_id = ? AND subject = ?",
                    (str(data.case_id), data.subject),
                )

        self.save_tracked(event.tracking, *passed_on, write=write)
        self.forget_keys(event)

    def _forget_cases(self, cur: Cursor, case_ids: list[UUID]) -> None:
        """Deletes the purged cases' facts, consents, objections and safety overrides."""
        self.cases.forget_many(cur, case_ids)
        keys = [str(case_id) for case_id in case_ids]
        tables = (self.consent_table, self.objection_table, self.agency_objection_table, self.override_table)
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            for table in tables:
                cur.execute(f"DELETE FROM {table} WHERE case_id IN ({', '.join('?' * len(chunk))})", chunk)


def _correction_recorded(command: CorrectShare, shares: list[Share]) -> CorrectionRecorded:
    return CorrectionRecorded(
        command.correction_id,
        command.share_id,
        tuple(CorrectionPassedOn(share.id, share.to_agency) for share in shares),
    )


# -- the read models' rows: JSON inside this module, typed values outside it ------------------
def _consent_row(consent: GivenConsent) -> dict[str, Any]:
    return {
        "purpose": consent.purpose,
        "categories": list(consent.categories),
        "recipients": list(consent.recipients),
        "valid_until": consent.valid_until.isoformat(),
    }


def _consent_of(row: Mapping[str, Any]) -> GivenConsent:
    return GivenConsent(
        purpose=row["purpose"],
        categories=tuple(row["categories"]),
        recipients=tuple(row["recipients"]),
        valid_until=date.fromisoformat(str(row["valid_until"])),
    )


def _override_row(override: SafetyOverride) -> dict[str, Any]:
    return {
        "override_id": str(override.override_id),
        "subjects": list(override.subjects),
        "categories": list(override.categories),
        "recipients": list(override.recipients),
        "ends_on": override.ends_on.isoformat(),
        "ended": override.ended,
    }


def _override_of(row: Mapping[str, Any]) -> SafetyOverride:
    return SafetyOverride(
        override_id=UUID(row["override_id"]),
        subjects=tuple(row["subjects"]),
        categories=tuple(row["categories"]),
        recipients=tuple(row["recipients"]),
        ends_on=date.fromisoformat(str(row["ends_on"])),
        ended=bool(row["ended"]),
    )
