"""What a phase of the benchmark cost: CPU and round trips, read from /proc, PostgreSQL's
statistics and RabbitMQ's management API (docs/performance.md, "What it measures").

- **CPU**: user + system time of the Keten processes (``/proc/<pid>/stat``; of a command the
  benchmark runs to its end, such as ``keten letters render``, from ``wait4``) and of the
  PostgreSQL backends serving them. A backend is one of theirs when its client port
  (``pg_stat_activity.client_port``) is the local port of a TCP socket one of those processes
  holds (``/proc/<pid>/fd`` -> ``/proc/net/tcp``). Backends are looked up at every ``sample``, so
  one that opened or closed during the phase is counted for the time it was seen.
- **Round trips**: transactions committed or rolled back in the benchmark's own database
  (``pg_stat_database``; a transaction of several statements counts once, so this is a lower
  bound on statements), less the benchmark's own; and messages published and delivered in the
  benchmark's own vhost (``message_stats`` of the management API, which RabbitMQ updates every
  5 s). Both report late: ``Settling`` waits until they hold everything up to a moment the
  platform went quiet.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import psycopg2
import requests

from keten.children import stop_with_parent

TICKS = os.sysconf("SC_CLK_TCK")
#: RabbitMQ's default ``collect_statistics_interval`` (5 s), and a margin for the stats database.
BROKER_STATS_DELAY = 5.5
#: How late ``pg_stat_database`` may count a transaction: a backend reports its transactions
#: when one ends at least 1 s after its last report, and one that then stays idle reports the
#: rest 10 s later (PostgreSQL 15: ``PGSTAT_MIN_INTERVAL``, ``PGSTAT_IDLE_INTERVAL``; measured
#: here: 50 transactions in a burst were counted 10.1 s later). Plus a margin.
DB_STATS_DELAY = 10.5


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far, ``None`` once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass  # the process ended, or a descriptor closed while we looked
    return inodes


def _local_ports(inodes: set[str], remote_port: int) -> set[int]:
    """Local ports of the TCP sockets ``inodes`` connected to ``remote_port``."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    columns = row.split()
                    if columns[9] in inodes and int(columns[2].rsplit(":", 1)[1], 16) == remote_port:
                        ports.add(int(columns[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


@dataclass(frozen=True)
class Finished:
    """A command run to its end: its exit code, what it printed, and the CPU it used."""

    returncode: int
    stdout: str
    stderr: str
    cpu_seconds: float


def run_to_end(command: list[str], env: dict[str, str], poll: float = 0.05) -> Finished:
    """Runs ``command`` and returns its user + system CPU from the kernel's account of it when it
    ended (``wait4``): a short-lived process is gone before ``/proc`` could be read a last time.
    Waits without blocking (``WNOHANG``), so the caller's green threads go on meanwhile."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(  # noqa: S603 (our own)
            command, env=env, stdout=out, stderr=err, preexec_fn=stop_with_parent
        )
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(poll)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Finished(
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            usage.ru_utime + usage.ru_stime,
        )


@dataclass
class CpuMeter:
    """CPU of ``pids`` and of their PostgreSQL backends between ``start`` and ``stop``."""

    pids: list[int]
    admin_dsn: str  # a connection outside the measured database, so looking costs it nothing
    db_port: int = 5432
    _first: dict[int, float] = field(default_factory=dict)
    _last: dict[int, float] = field(default_factory=dict)
    _backends: set[int] = field(default_factory=set)

    def backends(self) -> set[int]:
        inodes: set[str] = set()
        for pid in self.pids:
            inodes |= _socket_inodes(pid)
        ports = _local_ports(inodes, self.db_port)
        if not ports:
            return set()
        conn = psycopg2.connect(self.admin_dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)", (list(ports),))
                return {row[0] for row in cur.fetchall()}
        finally:
            conn.close()

    def start(self) -> None:
        self._first.clear()
        self._last.clear()
        self._backends.clear()
        self.sample(first=True)

    def sample(self, first: bool = False) -> None:
        """Reads every process's CPU now (call about once a second during a phase)."""
        backends = self.backends()
        self._backends |= backends
        for pid in (*self.pids, *backends):
            seconds = cpu_seconds(pid)
            if seconds is None:
                continue
            # A backend first seen after the start opened during the phase: all its CPU counts.
            self._first.setdefault(pid, seconds if first else 0.0)
            self._last[pid] = seconds

    def stop(self) -> dict[str, float]:
        """CPU milliseconds since ``start``: the processes', their backends' and the sum."""
        self.sample()
        keten = sum(self._last[p] - self._first[p] for p in self.pids if p in self._last)
        backends = sum(self._last[p] - self._first[p] for p in self._backends if p in self._last)
        return {
            "keten_ms": keten * 1000,
            "postgres_ms": backends * 1000,
            "total_ms": (keten + backends) * 1000,
        }


@dataclass(frozen=True)
class Counts:
    db_transactions: int
    broker_published: int
    broker_delivered: int

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.db_transactions - other.db_transactions,
            self.broker_published - other.broker_published,
            self.broker_delivered - other.broker_delivered,
        )


@dataclass(frozen=True)
class RoundTrips:
    """Transactions in ``database`` and messages through ``vhost`` so far."""

    admin_dsn: str
    database: str
    management_api: str
    vhost: str
    user: str
    password: str

    def counts(self) -> Counts:
        conn = psycopg2.connect(self.admin_dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                    (self.database,),
                )
                transactions = int(cur.fetchone()[0])
        finally:
            conn.close()
        response = requests.get(
            f"{self.management_api}/vhosts/{quote(self.vhost, safe='')}",
            auth=(self.user, self.password),
            timeout=10,
        )
        response.raise_for_status()
        stats: dict[str, Any] = response.json().get("message_stats", {})
        return Counts(
            transactions,
            int(stats.get("publish", 0)),
            int(stats.get("deliver_get", 0)),
        )

    def settling(self, quiet_since: float | None = None) -> Settling:
        """A wait for the counts of everything until ``quiet_since`` (default now; ``Settling``),
        to look at now and then while other work goes on, and to finish with ``Settling.wait``."""
        return Settling(self, time.monotonic() if quiet_since is None else quiet_since)


class Settling:
    """The counts of everything that happened until ``quiet_since`` (a ``time.monotonic()``
    after which the platform publishes and delivers nothing of the part's).

    Every channel reports its counts every 5 s, so the broker's counts ``BROKER_STATS_DELAY``
    after ``quiet_since`` hold everything until then; a change seen before that is the report
    of what went before, and is expected. They are taken once a look after that finds them as
    the look before it did. A change seen later (statistics lagging on a loaded machine, or
    work after ``quiet_since``) is waited out: the counts must then stand still for
    ``BROKER_STATS_DELAY``, as long as the broker takes to report. The store's count is taken
    no earlier than ``DB_STATS_DELAY`` after ``quiet_since``. ``look`` may be called while
    other work goes on (the idle window): the time it spends counts towards the wait."""

    LOOK_EVERY = 1.0

    def __init__(
        self,
        trips: Any,  # RoundTrips, or what a test gives: ``counts()``
        quiet_since: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.trips = trips
        self.quiet_since = quiet_since
        self.clock, self.sleep = clock, sleep
        self.reported_by = quiet_since + BROKER_STATS_DELAY
        self.last = trips.counts()
        self.looked_at = clock()
        self._stable_since = quiet_since  # the last change seen after ``reported_by``
        self._confirmed = False

    def look(self) -> Counts:
        counts = self.trips.counts()
        now = self.clock()
        moved = (counts.broker_published, counts.broker_delivered) != (
            self.last.broker_published,
            self.last.broker_delivered,
        )
        if moved and now > self.reported_by:
            self._stable_since = now
        # Two looks after the broker has reported, with nothing changed between them.
        self._confirmed = not moved and self.looked_at >= self.reported_by
        self.last, self.looked_at = counts, now
        return counts

    def done(self) -> bool:
        if self.looked_at < self.quiet_since + DB_STATS_DELAY:
            return False
        if self._stable_since > self.quiet_since:  # moved after it had reported: wait it out
            return self.looked_at - self._stable_since >= BROKER_STATS_DELAY
        return self._confirmed

    def wait(self, timeout: float = 60.0) -> Counts:
        """Looks every second until ``done`` (or ``timeout``), and returns the last counts."""
        deadline = self.clock() + timeout
        while not self.done() and self.clock() < deadline:
            self.sleep(max(0.0, self.looked_at + self.LOOK_EVERY - self.clock()))
            self.look()
        return self.last


def per_share(delta: Counts, own_transactions: int, shares: int) -> dict[str, float]:
    """Round trips per share: database transactions (less the benchmark's own) plus messages
    published (each confirmed) and delivered."""
    transactions = max(0, delta.db_transactions - own_transactions)
    return {
        "db_transactions": transactions / shares,
        "broker_published": delta.broker_published / shares,
        "broker_delivered": delta.broker_delivered / shares,
        "total": (transactions + delta.broker_published + delta.broker_delivered) / shares,
    }
