"""When the benchmark takes its counts (``keten.bench.cost.Settling``): RabbitMQ reports every
5 s and PostgreSQL counts an idle backend's last transactions 10 s late, so the counts of a part
are taken once both have reported everything until the platform went quiet, and no sooner.
The broker's and the store's reports here are a timeline on a clock of the test's own."""

from __future__ import annotations

from keten.bench.cost import BROKER_STATS_DELAY, DB_STATS_DELAY, Counts, Settling


class Timeline:
    """What the management API and ``pg_stat_database`` would answer at each moment: the
    counts reported from ``at`` on (the latest whose ``at`` has passed)."""

    def __init__(self, *reports: tuple[float, Counts]):
        self.reports = sorted(reports, key=lambda report: report[0])
        self.now = 0.0
        self.looks = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def counts(self) -> Counts:
        self.looks += 1
        return [counts for at, counts in self.reports if at <= self.now][-1]


def settling(timeline: Timeline, quiet_since: float = 0.0) -> Settling:
    return Settling(timeline, quiet_since, clock=timeline.clock, sleep=timeline.sleep)


def test_the_counts_are_taken_once_the_store_has_reported_and_two_looks_found_the_broker_still():
    timeline = Timeline(
        (0.0, Counts(100, 50, 40)),  # the part's last seconds not reported yet
        (3.2, Counts(180, 90, 70)),  # the broker's report of them
        (10.1, Counts(230, 90, 70)),  # the store's late count of the part's last transactions
    )

    counts = settling(timeline).wait()

    assert counts == Counts(230, 90, 70)
    assert DB_STATS_DELAY <= timeline.now < DB_STATS_DELAY + 1.5


def test_a_broker_count_that_moves_after_it_should_have_reported_is_waited_out():
    timeline = Timeline(
        (0.0, Counts(100, 50, 40)),
        (3.2, Counts(180, 90, 70)),
        (8.0, Counts(190, 92, 70)),  # lagging statistics, or work after the quiet moment
    )

    counts = settling(timeline).wait()

    assert counts == Counts(190, 92, 70)
    assert timeline.now >= 8.0 + BROKER_STATS_DELAY


def test_looks_taken_while_other_work_goes_on_count_towards_the_wait():
    timeline = Timeline((0.0, Counts(100, 50, 40)), (2.0, Counts(180, 90, 70)))
    waiting = settling(timeline)
    for _ in range(11):  # the idle window: a look every second
        timeline.sleep(1.0)
        waiting.look()
    looks = timeline.looks

    assert waiting.wait() == Counts(180, 90, 70)
    assert timeline.looks == looks  # done already: nothing more to wait for


def test_the_wait_gives_up_after_its_timeout_with_the_last_counts():
    timeline = Timeline(*((float(at), Counts(at, at, at)) for at in range(0, 200, 2)))  # never still

    counts = settling(timeline).wait(timeout=30.0)

    assert 30.0 <= timeline.now < 32.0
    assert counts.broker_published >= 28
