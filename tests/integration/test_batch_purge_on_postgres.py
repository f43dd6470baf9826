"""The batch purge on PostgreSQL, where it reads many cases at once: every unit purged once,
every service forgets, and a case under a legal hold, purged already or changed between the plan
and the purge still goes the careful one-unit path with the same outcome.

The five applications are wired by hand as in ``tests/unit/test_retention.py``, on a schema of
their own; counts of statements (not times) show that a batch reads its cases together.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eventsourcing.persistence import OperationalError

from services.retention.application import RetentionUseCases
from services.retention.purge_plan import PurgeOutcome, PurgeReport
from shared.config import Settings
from shared.pgstore import PgAggregateRecorder
from tests.conftest import secrets_env
from tests.factories import received
from tests.unit.test_retention import YEARS_3, FailingVault, Platform

pytestmark = pytest.mark.integration


@pytest.fixture
def platform(postgres_dsn, pg_schema):
    env = {"DATABASE_URL": postgres_dsn, "DATABASE_SCHEMA": pg_schema, **secrets_env()}
    return Platform(Settings.from_env(env))


def closed_cases(platform: Platform, count: int) -> list:
    cases = []
    for _ in range(count):
        case_id = platform.register()
        platform.share(case_id)
        platform.close(case_id)
        cases.append(case_id)
    return cases


class Reads:
    """Counts how retention's store reads its aggregates: one at a time, or many at once."""

    def __init__(self, monkeypatch, recorder):
        self.one, self.many = 0, 0
        one, many = PgAggregateRecorder.select_events, PgAggregateRecorder.select_events_of

        def select_events(this, *args, **kwargs):
            self.one += this is recorder
            return one(this, *args, **kwargs)

        def select_events_of(this, *args, **kwargs):
            self.many += this is recorder
            return many(this, *args, **kwargs)

        monkeypatch.setattr(PgAggregateRecorder, "select_events", select_events)
        monkeypatch.setattr(PgAggregateRecorder, "select_events_of", select_events_of)


def forgotten_everywhere(platform: Platform, case_id) -> bool:
    apps = (platform.consent, platform.sharing, platform.notification, platform.retention)
    return all(app.cases.get(case_id) is None for app in apps)


def test_a_batch_reads_its_cases_together_and_purges_every_unit_once(platform, monkeypatch):
    cases = closed_cases(platform, 6)
    reads = Reads(monkeypatch, platform.retention.recorder)

    platform.purge(YEARS_3)

    # The plan and the one batch read the aggregates of all six cases in one statement each.
    assert (reads.one, reads.many) == (0, 2)
    purged = platform.published("RecordsPurged")
    assert sorted((e.data.case_id, e.data.record_kind) for e in purged) == sorted(
        (case_id, kind) for case_id in cases for kind in ("case_records", "share_records")
    )
    assert sorted(e.data.case_id for e in purged if e.data.complete) == sorted(cases)
    assert all(platform.vault.keys.live_keys(case_id) == [] for case_id in cases)
    assert all(platform.vault.keys.is_case_shredded(case_id) for case_id in cases)
    assert all(forgotten_everywhere(platform, case_id) for case_id in cases)
    statuses = {
        e.record_kind: e.status for case_id in cases for e in platform.retention.schedule_for(case_id)
    }
    assert statuses == {"case_records": "purged", "share_records": "purged", "outcome": "kept"}

    platform.purge(YEARS_3)  # nothing left to do
    assert len(platform.published("RecordsPurged")) == len(purged)


def test_held_purged_already_and_changed_meanwhile_go_the_careful_path(platform):
    held, erased, changed, *plain = closed_cases(platform, 5)
    platform.hold(held)
    assert platform.erase(erased).decision == "granted"  # its units purged one at a time already
    retention: RetentionUseCases = platform.retention
    plan = retention.plan_purge(datetime.now(UTC) + YEARS_3)
    platform.hold(changed)  # after the plan: the batch's save of this case fails, and it is held

    results = retention.purge_many([planned.unit for planned in plan])
    platform.sync()

    outcomes = {(r.case_id, r.record_kind): r.outcome for r in results}
    for kind in ("case_records", "share_records"):
        assert outcomes[(held, kind)] is PurgeOutcome.HELD
        assert outcomes[(changed, kind)] is PurgeOutcome.HELD
        assert all(outcomes[(case_id, kind)] is PurgeOutcome.PURGED for case_id in plain)
    assert (erased, "case_records") not in outcomes  # not planned: purged by the erasure
    assert PurgeReport.of(results).purged == 2 * len(plain)
    assert all(platform.vault.keys.live_keys(case_id) for case_id in (held, changed))
    assert all(platform.vault.keys.live_keys(case_id) == [] for case_id in (erased, *plain))
    assert all(forgotten_everywhere(platform, case_id) for case_id in (erased, *plain))
    assert not any(forgotten_everywhere(platform, case_id) for case_id in (held, changed))


def test_a_batch_purge_interrupted_halfway_is_finished_by_the_next_run(platform, monkeypatch):
    monkeypatch.setattr("services.retention.application.PURGE_BATCH", 4)  # two cases a batch
    cases = closed_cases(platform, 4)
    real = platform.retention.vault
    platform.retention.vault = FailingVault(real, fail_from=5)  # the second batch's keys fail
    with pytest.raises(OperationalError):
        platform.purge(YEARS_3)
    assert len(platform.published("RecordsPurged")) == 4  # the first batch, two cases

    platform.retention.vault = real
    platform.purge(YEARS_3)
    platform.purge(YEARS_3)

    purged = platform.published("RecordsPurged")
    assert sorted((e.data.case_id, e.data.record_kind) for e in purged) == sorted(
        (case_id, kind) for case_id in cases for kind in ("case_records", "share_records")
    )
    assert all(real.keys.live_keys(case_id) == [] for case_id in cases)
    assert all(forgotten_everywhere(platform, case_id) for case_id in cases)


def test_a_consumer_batch_of_purges_forgets_its_cases_together_at_its_end(platform):
    cases = closed_cases(platform, 3)
    platform.retention.purge_due(datetime.now(UTC) + YEARS_3)
    purges = [e for e in received(platform.retention) if e.name == "RecordsPurged"]
    sharing = platform.sharing
    tables = [sharing.cases.table, sharing.consent_table]

    def rows() -> int:
        with sharing.sql.transaction(commit=False) as cur:
            return sum(
                cur.execute(
                    f"SELECT count(*) FROM {table} WHERE case_id = ANY(?)", ([str(c) for c in cases],)
                ).fetchone()[0]
                for table in tables
            )

    before = rows()
    with sharing.batch() as batch:
        for purge in purges:
            sharing.record_records_purged(purge)
        # Collected, not yet deleted: one multi-row delete per table at the batch's end.
        assert sorted(batch.deferred["forget purged cases"][1]) == sorted(cases)
        with sharing.sql.transaction(commit=False) as cur:
            assert cur.execute(f"SELECT count(*) FROM {sharing.cases.table}").fetchone()[0] >= len(cases)
    assert before > 0
    assert rows() == 0
    assert sharing.position("retention") == max(p.position for p in purges)
    assert all(sharing.cases.get(case_id) is None for case_id in cases)


def test_a_consumer_batch_that_fails_forgets_nothing(platform):
    [case_id] = closed_cases(platform, 1)
    platform.retention.purge_due(datetime.now(UTC) + YEARS_3)
    purges = [e for e in received(platform.retention) if e.name == "RecordsPurged"]
    sharing = platform.sharing
    with pytest.raises(RuntimeError), sharing.batch():
        for purge in purges:
            sharing.record_records_purged(purge)
        raise RuntimeError("the consumer died before the batch's end")
    assert sharing.cases.get(case_id) is not None
    assert sharing.position("retention") == 0
