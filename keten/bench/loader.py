"""The benchmark's fast loader: many cases and shares straight into the stores, not via the bus.

The first citizen is loaded by the services' own code (``load_real``): the case is registered
by ``CaseRegistrationUseCases``, each share decided and sealed by ``DataSharingUseCases``, the
notification and the overview rows written by ``NotificationUseCases``, each event encoded by
the application's mapper (personal values sealed under the case's and the subject's keys in the
key store, as in production) and passed between services through the bus's own encode and
decode. case_registration's and data_sharing's writes are captured and copied in with ``COPY``
(what the real path would read back from its own writes, the case facts, is served from the
captured rows); the notification service writes as it does in production.

Every other citizen's rows are derived from the first one's (``keten.bench.derive``): the same
rows with the citizen's own ids, pseudonym, keys and sealed values, made with the services'
functions, by worker processes that copy them in. ``tests/integration/test_bench_loader.py``
holds the two paths against each other.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.application import project_aggregate
from eventsourcing.persistence import StoredEvent, Tracking

from keten.bench import derive
from keten.bench.derive import citizen_bsn, citizen_ids
from keten.demo import register_case_command, share_request_command
from services.case_registration.application import CaseRegistrationUseCases
from services.case_registration.domain import Case
from services.data_sharing.application import DataSharingUseCases
from services.data_sharing.domain import SubjectSay
from services.notification.application import NotificationUseCases
from shared.casefacts import CaseFacts, case_view
from shared.caseview import CaseView
from shared.config import Settings
from shared.contracts.commands import RegisterCaseSchema, RequestShareSchema, load_command
from shared.contracts.envelope import ReceivedEvent, decode_event, encode_event
from shared.crypto import Vault
from shared.pseudonym import Pseudonymiser, pseudonymise
from shared.sealed import KeyScope, Sealed

#: The agency that registers, activates and shares, as in the demo.
SENDER = "gemeente-utrecht"

#: Citizens whose rows are captured before they are copied in (bounded memory).
BATCH = 2_000
_INSERT = re.compile(r"INSERT INTO (\w+) \(([^)]*)\) VALUES")
#: A consumer's position moving forward (``KetenApplication._move_tracking``, the recorder's
#: ``_insert_tracking``): the loader keeps its last value and writes it once at the end.
_TRACKING = re.compile(r"INSERT INTO (\w+) AS t \(application_name, notification_id\)")


@dataclass
class Loaded:
    seconds: float
    bsns: list[str]
    shares_per_citizen: int


@dataclass
class Captured:
    """What the applications wrote during one batch, in the order they wrote it."""

    events: dict[str, list[StoredEvent]] = field(default_factory=lambda: defaultdict(list))
    rows: dict[tuple[str, str], list[Sequence[Any]]] = field(default_factory=lambda: defaultdict(list))
    tracking: dict[tuple[str, str], int] = field(default_factory=dict)
    #: How many of each application's events were already handed on to its consumers.
    handed_on: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class _RecordingCursor:
    def __init__(self, captured: Captured):
        self.captured = captured
        self.raw = self
        self._returned: tuple[Any, ...] | None = None

    def execute(self, statement: str, params: Sequence[Any] = ()) -> _RecordingCursor:
        tracking = _TRACKING.match(statement)
        if tracking is not None:
            self.captured.tracking[(tracking.group(1), params[0])] = params[1]
            self._returned = (params[1],)  # RETURNING: the position moved
            return self
        match = _INSERT.match(statement)
        if match is None:
            raise RuntimeError("the loader only writes new rows; the services read or update here")
        self.captured.rows[(match.group(1), match.group(2))].append(tuple(params))
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._returned


class _RecordingSql:
    def __init__(self, captured: Captured):
        self.captured = captured

    @contextmanager
    def transaction(self, *, commit: bool = True) -> Iterator[_RecordingCursor]:
        yield _RecordingCursor(self.captured)


class _CapturedCases:
    """The case facts the services would read back from their own table."""

    def __init__(self, facts: CaseFacts, captured: Captured):
        self.facts = facts
        self.captured = captured
        self.by_id: dict[str, Sequence[Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.facts, name)  # writing goes to the real read model's code

    def get(self, case_id: uuid.UUID) -> CaseView | None:
        if str(case_id) not in self.by_id:
            for (table, _), rows in self.captured.rows.items():
                if table == self.facts.table:
                    self.by_id.update((row[0], row) for row in rows[len(self.by_id) :])
        row = self.by_id.get(str(case_id))
        return None if row is None else case_view((*row, None, None))


@contextmanager
def capturing(app: Any, captured: Captured) -> Iterator[None]:
    """Makes ``app`` write into ``captured`` instead of its store (reads still go to the store)."""

    def insert_events(stored: Sequence[StoredEvent], tracking: Tracking | None = None, **_: Any) -> None:
        captured.events[app.name].extend(stored)
        if tracking is not None:
            captured.tracking[(app.name, tracking.application_name)] = tracking.notification_id

    recorder = app.recorder
    saved_sql = app.sql
    recorder.insert_events = insert_events
    recorder._insert_events = lambda cur, stored, **kw: insert_events(stored, **kw)
    app.sql = _RecordingSql(captured)
    try:
        yield
    finally:
        del recorder.insert_events, recorder._insert_events
        app.sql = saved_sql


def load(
    settings: Settings,
    citizens: int,
    share_events: int,
    workers: int = 2,
    run: str | None = None,
    chunk: int | None = None,
) -> Loaded:
    """``share_events`` shares (DataShared, notified, in the overview) over ``citizens`` citizens,
    one case each.

    The first citizen goes through the services' own code (``load_real``); every other
    citizen's rows are derived from that citizen's (``keten.bench.derive``): the same rows with
    the citizen's own ids, pseudonym, keys and sealed values, made by ``workers`` processes and
    copied in with ``COPY``."""
    started = time.monotonic()
    per_citizen = max(1, share_events // citizens)
    run = run or uuid.uuid4().hex
    recorded = load_real(settings, [0], per_citizen, run)
    template = derive.read_template(settings, recorded, citizen_ids(run, 0, per_citizen))
    derive.derive_citizens(settings, template, run, range(1, citizens), workers, chunk or derive.CHUNK)
    derive.finish(settings, template, citizens)
    return Loaded(time.monotonic() - started, [citizen_bsn(n) for n in range(citizens)], per_citizen)


@dataclass
class Recorded:
    """What the real path did besides its rows: every value it sealed (scope, plaintext, sealed)
    and the body of every event message it passed on (by stream and position)."""

    sealed: list[tuple[KeyScope, Any, Sealed]] = field(default_factory=list)
    bodies: dict[tuple[str, int], bytes] = field(default_factory=dict)


def load_real(settings: Settings, numbers: Sequence[int], per_citizen: int, run: str) -> Recorded:
    """Citizens ``numbers`` (the store's first, in order) through the services' own code:
    ``register_case`` and the activation, ``request_share`` and ``notify_share``, each event
    encoded and decoded as the bus carries it. Only case_registration's and data_sharing's writes
    are captured and copied in (COPY); the notification service writes as it does in
    production."""
    cases_app, sharing, notifications = (
        CaseRegistrationUseCases(settings),
        DataSharingUseCases(settings),
        NotificationUseCases(settings),
    )
    pseudonyms = Pseudonymiser(settings.pseudonym_secret)
    positions: dict[str, int] = defaultdict(int)
    recorded = Recorded()
    tracking: dict[tuple[str, str], int] = {}
    vault = cases_app.vault  # the process's one vault: every application seals with it
    real_seal = vault.seal

    def seal(scope: KeyScope, value: Any) -> Sealed:
        sealed = real_seal(scope, value)
        recorded.sealed.append((scope, value, sealed))
        return sealed

    vault.seal = seal  # type: ignore[method-assign]
    # What request_share reads besides the case: no consent is needed for this share (the
    # recipient's ground is its statutory task) and each request is new (none decided).
    sharing._facts_for_request = lambda case_id, subjects, decisions: (  # type: ignore[method-assign]
        sharing.cases.get(case_id),
        {subject: SubjectSay(consents=(), objection_id=None, overrides=()) for subject in subjects},
        set(),
    )
    sharing._find_decision = lambda request_id, to_agency: None  # type: ignore[method-assign]
    try:
        for first in range(0, len(numbers), BATCH):
            captured = Captured()
            sharing.cases = _CapturedCases(sharing.cases, captured)  # type: ignore[assignment]
            with (
                capturing(cases_app, captured),
                capturing(sharing, captured),
            ):
                for number in numbers[first : first + BATCH]:
                    ids = citizen_ids(run, number, per_citizen)
                    case_id = str(ids.case_id)
                    cases_app.register_case(
                        load_command(
                            RegisterCaseSchema,
                            register_case_command(case_id, bsn=ids.bsn),
                            pseudonymise=pseudonyms,
                        )
                    )
                    # activate_case as the service does it; the case is not in the store yet,
                    # only its registration, just captured.
                    registered = cases_app.mapper.to_domain_event(captured.events[cases_app.name][-1])
                    case: Case | None = project_aggregate(None, [registered])
                    assert isinstance(case, Case)
                    case.activate(activated_by=SENDER)
                    cases_app.save(case)
                    for event in _received(cases_app, captured, positions, recorded):
                        notifications.learn(event)
                        if event.name == "CaseActivated":
                            _activate(captured, sharing.cases.facts, case_id)  # type: ignore[attr-defined]
                        else:
                            sharing.cases.facts.apply(event)  # type: ignore[attr-defined]
                    for request_id in ids.request_ids:
                        command = share_request_command(case_id, bsn=ids.bsn)
                        command["request_id"] = str(request_id)
                        sharing.request_share(
                            load_command(RequestShareSchema, command, pseudonymise=pseudonyms)
                        )
                        for shared in _received(sharing, captured, positions, recorded):
                            notifications.notify_share(shared)
            sharing.cases = sharing.cases.facts  # type: ignore[attr-defined]
            _copy_in(settings, captured)
            tracking.update(captured.tracking)
        for (_, upstream), position in tracking.items():
            sharing.process_recorder.insert_tracking(Tracking(upstream, position))
    finally:
        vault.seal = real_seal  # type: ignore[method-assign]
        for each in (cases_app, sharing, notifications):
            each.close()
    return recorded


def _activate(captured: Captured, facts: CaseFacts, case_id: str) -> None:
    """CaseActivated as data_sharing applies it, on the case's row before it is copied in (the
    loader writes new rows only)."""
    for (table, _), rows in captured.rows.items():
        if table == facts.table:
            for index in range(len(rows) - 1, -1, -1):  # just registered: the last row
                if rows[index][0] == case_id:
                    rows[index] = (case_id, "active", *rows[index][2:])
                    break


def _received(
    app: Any, captured: Captured, positions: dict[str, int], recorded: Recorded
) -> list[ReceivedEvent]:
    """The app's events captured since last asked, as a consuming service receives them: each
    at the notification id it gets when copied in (the tables start empty)."""
    events = captured.events[app.name]
    start, captured.handed_on[app.name] = captured.handed_on[app.name], len(events)
    received = []
    for stored in events[start:]:
        positions[app.name] += 1
        message = encode_event(app.mapper.to_domain_event(stored), app.name, positions[app.name])
        if message is not None:
            recorded.bodies[(app.name, positions[app.name])] = message.body
            received.append(decode_event(message.body))
    return received


def _copy_in(settings: Settings, captured: Captured) -> None:
    from shared.db import postgres_datastore

    datastore = postgres_datastore(settings)
    with datastore.transaction(commit=True) as cur, derive.blocking_psycopg2():
        for app_name, events in captured.events.items():
            stored = [(str(e.originator_id), e.originator_version, e.topic, bytes(e.state)) for e in events]
            derive.copy_rows(
                cur, f"{app_name}_events", "originator_id, originator_version, topic, state", stored
            )
        for (table, columns), rows in captured.rows.items():
            derive.copy_rows(cur, table, columns, rows)


def overview_latencies(settings: Settings, bsns: list[str], queries: int, seed: int = 8) -> list[float]:
    """Milliseconds per citizen's overview (``NotificationUseCases.overview_for`` and its JSON:
    the read model and the sealed values opened), for ``queries`` random citizens, with a cold
    key cache."""
    import random

    notifications = NotificationUseCases(settings)
    notifications.vault = Vault(notifications.vault.keys)
    chooser = random.Random(seed)  # noqa: S311 (choosing citizens, not a secret)
    timings = []
    try:
        for bsn in chooser.sample(bsns, min(queries, len(bsns))):
            subject = pseudonymise(bsn, settings.pseudonym_secret)
            began = time.perf_counter()
            overview = notifications.overview_for(subject).to_json()  # as the RPC answers it
            timings.append((time.perf_counter() - began) * 1000)
            if not overview["cases"] or not overview["cases"][0]["shares"]:
                raise RuntimeError("a loaded citizen's overview is empty")
    finally:
        notifications.close()
    return timings
