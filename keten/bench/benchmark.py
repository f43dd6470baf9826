"""``keten bench``: Keten held against the raw limit of its broker and store (docs/performance.md).

In one run, on this machine's RabbitMQ and PostgreSQL, in a vhost and a database of its own
(created here, dropped afterwards):

1. raw limit: messages published with confirms to a durable queue, consumed with manual acks,
   each appended as one row in its own transaction (kombu and psycopg2, no Keten);
2. Keten end to end: as many signed share requests on ``keten.commands`` (the agencies' bus,
   ``keten_client``) to ``DataShared`` stored, relayed, the notification and the overview entry
   recorded and the retention schedule updated; then latency at half that throughput;
3. the citizen's overview with many share events in the store (``keten.bench.loader``);
4. purging due cases with their keys and read-model rows;
5. the end-to-end throughput on the embedded default (SQLite, in-process broker).

Each service runs in a process of its own, as in production, and the letters are laid out as
on Kubernetes: by ``keten letters render`` in a process of its own after the end-to-end part
(notification's own timer off). Beside speed, the end-to-end part measures cost
(``keten.bench.cost``): CPU milliseconds (the letters' included) and round trips per share,
and what the services do while idle. Prints one table and writes ``bench/results.json``, also when a
part timed out (what it measured until then, with the part named in ``timed_out``).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import eventlet
import psycopg2
import requests
from eventsourcing.utils import get_topic
from kombu import Connection, Consumer, Exchange, Producer, Queue

from keten.bench import loader
from keten.bench.cost import CpuMeter, RoundTrips, Settling, per_share, run_to_end
from keten.bench.loader import citizen_bsn
from keten.children import stop_with_parent
from keten.demo import close_case_command, register_case_command, share_request_command
from keten_client import AgencyClient
from services.data_sharing.domain import share_id
from services.notification.delivery import DUE_STATUSES
from services.notification.domain import Notification, notification_id
from shared.agencies import register_new_credentials
from shared.broker_admin import BrokerAdmin
from shared.config import Settings, generate_secret
from shared.partitions import case_key, partition_of, stream_name
from shared.pseudonym import pseudonymise
from shared.relay import POSITION as RELAY_POSITION
from shared.topology import SUBSCRIPTIONS

log = logging.getLogger(__name__)

RESULTS = Path("bench/results.json")
#: What every run writes, whatever its sizes.
RESULT_KEYS = (
    "raw_per_s",
    "e2e_shares_per_s",
    "ratio_e2e_to_raw",
    "cpu_ms_per_share",
    "round_trips_per_share",
    "latency_ms",
    "overview_p50_ms",
    "overview_p99_ms",
    "purge_10k_s",
    "purge_cases",
    "embedded_shares_per_s",
    "sizes",
    "machine",
)
SENDER, RECIPIENT = "gemeente-utrecht", "kredietbank-utrecht"
#: The services a share passes through (the gateway is not on the agencies' bus path).
SERVICES = ("case_registration", "consent", "data_sharing", "notification", "retention")
#: Who follows whom: every consumer of an upstream must have caught up for a phase to be done.
#: The upstreams whose events the benchmark waits for every follower to have processed.
UPSTREAMS = ("case_registration", "data_sharing", "retention")
NOTIFICATION_TOPIC = get_topic(Notification.NotificationScheduled)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Sizes:
    shares: int  # raw messages and end-to-end shares (the same number)
    cases: int  # cases the shares are spread over; all of them are purged
    latency_seconds: float  # how long the fixed half load is offered
    overview_citizens: int
    overview_events: int
    overview_queries: int
    embedded_shares: int
    idle_seconds: float = 6.0  # how long the idle services' CPU and transactions are measured
    #: Whether the end-to-end part runs again one message per transaction (``unbatched``).
    unbatched: bool = True


#: The issue's sizes (issue 15): 10,000 shares and purges, and the overview at 1,000,000 share
#: events over 100,000 citizens (the loader builds that store in minutes: docs/performance.md).
FULL = Sizes(
    shares=10_000,
    cases=10_000,
    latency_seconds=20.0,
    overview_citizens=100_000,
    overview_events=1_000_000,
    overview_queries=1_000,
    embedded_shares=500,
    idle_seconds=30.0,
)
#: Small, but each part still measures something: 4 shares per case, a 3 s idle window. The
#: unbatched comparison is left out (``keten bench --quick --unbatched`` adds it): it starts the
#: platform a second time and would take a third of the run (docs/performance.md, part J).
QUICK = Sizes(
    shares=200,
    cases=50,
    latency_seconds=3.0,
    overview_citizens=200,
    overview_events=2_000,
    overview_queries=100,
    embedded_shares=60,
    idle_seconds=3.0,
    unbatched=False,
)


# -- what agencies send (one place, so a change of the rules changes the benchmark here) --------
@dataclass
class CaseCommands:
    """The bus commands that give a share its case, the share requests, and the close."""

    case_id: str
    bsn: str

    def setup(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            ("case_registration", "register_case", register_case_command(self.case_id, bsn=self.bsn)),
            ("case_registration", "activate_case", {"schema_version": 1, "case_id": self.case_id}),
        ]

    def share(self) -> tuple[str, str, dict[str, Any]]:
        return ("data_sharing", "request_share", share_request_command(self.case_id, bsn=self.bsn))

    def close(self) -> tuple[str, str, dict[str, Any]]:
        return ("case_registration", "close_case", {**close_case_command(), "case_id": self.case_id})


# -- isolated servers ------------------------------------------------------------------------------
@dataclass
class Servers:
    amqp_uri: str
    database_url: str
    schema: str
    management_api: str
    admin_dsn: str  # the server's own database, outside what is measured
    database: str  # the database of the benchmark's own

    def settings(self, **extra: str) -> Settings:
        return Settings.from_env(self.env(**extra))

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "AMQP_URI": self.amqp_uri,
            "DATABASE_URL": self.database_url,
            "DATABASE_SCHEMA": self.schema,
            "KETEN_MASTER_KEY": self.master_key,
            "KETEN_PSEUDONYM_SECRET": self.pseudonym_secret,
            "KETEN_PURGE_INTERVAL": "0",  # the benchmark times the purge itself
            "KETEN_LOG_LEVEL": "WARNING",
            **extra,
        }

    master_key: str = field(default_factory=generate_secret)
    pseudonym_secret: str = field(default_factory=generate_secret)


@contextmanager
def isolated_servers(amqp_base: str, database_url: str) -> Iterator[Servers]:
    """A RabbitMQ vhost and a PostgreSQL database of the benchmark's own (so that their
    statistics count only what the benchmark does), dropped afterwards."""
    parts = urlsplit(amqp_base)
    user, password = parts.username or "guest", parts.password or "guest"
    name = f"keten_bench_{uuid.uuid4().hex[:10]}"
    amqp_uri = f"amqp://{user}:{password}@{parts.hostname}:{parts.port or 5672}/{name}"
    broker = BrokerAdmin.from_amqp_uri(amqp_uri, os.environ.get("RABBITMQ_MANAGEMENT_URL"))
    broker.create_vhost()
    _admin_sql(database_url, f'CREATE DATABASE "{name}"')
    own_database = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    try:
        yield Servers(amqp_uri, own_database, name, broker.api, database_url, name)
    finally:
        from shared.db import close_postgres_datastores

        close_postgres_datastores(name)
        broker.delete_vhost()
        _admin_sql(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_sql(dsn: str, statement: str) -> None:
    conn = psycopg2.connect(dsn)
    conn.autocommit = True  # CREATE and DROP DATABASE run outside a transaction
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


# -- 1. the raw limit ------------------------------------------------------------------------------
def raw_limit(servers: Servers, messages: int) -> float:
    """Messages per second through RabbitMQ into PostgreSQL without Keten: each published with a
    confirm to a durable (quorum, like Keten's) queue, consumed with a manual ack after its row
    committed in its own transaction."""
    queue = Queue(
        "bench.raw",
        exchange=Exchange("bench.raw", type="direct"),
        routing_key="raw",
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )
    db = psycopg2.connect(servers.database_url)
    with db.cursor() as cur:
        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{servers.schema}"')
        cur.execute(
            f'CREATE TABLE "{servers.schema}".bench_raw (id bigserial PRIMARY KEY, body text NOT NULL)'
        )
    db.commit()
    stored = 0

    def consume() -> None:
        nonlocal stored

        def on_message(body: Any, message: Any) -> None:
            nonlocal stored
            with db.cursor() as cur:
                cur.execute(
                    f'INSERT INTO "{servers.schema}".bench_raw (body) VALUES (%s)', (json.dumps(body),)
                )
            db.commit()
            message.ack()
            stored += 1

        with Connection(servers.amqp_uri) as connection:
            channel = connection.channel()
            consumer = Consumer(channel, queues=[queue], callbacks=[on_message], accept=["json"])
            consumer.qos(prefetch_count=100)
            with consumer:
                while stored < messages:
                    with suppress(TimeoutError, OSError):
                        connection.drain_events(timeout=1)

    with Connection(servers.amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel())
        queue(producer.channel).declare()
        reader = eventlet.spawn(consume)
        started = time.monotonic()
        for number in range(messages):
            producer.publish(
                {"n": number, "share": str(uuid.uuid4())},
                exchange=queue.exchange,
                routing_key="raw",
                delivery_mode=2,
                serializer="json",
            )
        reader.wait()  # every row committed (or the consumer's error)
        elapsed = time.monotonic() - started
    db.close()
    return messages / elapsed


# -- the platform under test -----------------------------------------------------------------------
class Platform:
    """Keten's services and a window on their stores; ``app(name)`` is the service's application
    on the same store (read only here: positions, notification logs)."""

    settings: Settings
    amqp_url: str
    _apps: dict[str, Any]
    #: The services that run: each follower among them catches up with each upstream among them.
    services: tuple[str, ...] = SERVICES
    #: Transactions the benchmark itself ran in the store (to leave out of the services' cost).
    own_transactions: int = 0

    def app(self, name: str) -> Any:
        return self._apps[name]

    def caught_up(self) -> bool:
        """True when every follower has processed everything its upstreams stored (in each
        partition, when the streams are partitioned)."""
        partitions = self.settings.event_partitions
        for follower, keys in SUBSCRIPTIONS.items():
            if follower not in self.services:
                continue
            for upstream in UPSTREAMS:
                if upstream not in self.services:
                    continue
                wanted = {key.split(".", 1)[1] for key in keys if key.startswith(f"{upstream}.")}
                if not wanted:
                    continue
                for number in range(partitions):
                    stream = stream_name(upstream, number, partitions)
                    self.own_transactions += 2  # the position, then the log after it
                    if self._unprocessed(upstream, self.app(follower).position(stream), wanted, number):
                        return False
        return True

    def relays_published(self) -> bool:
        """True when every service's relay has published everything its store holds: after
        that, the platform sends nothing more of what it was given to do."""
        for name in self.services:
            app = self.app(name)
            self.own_transactions += 2  # the relay's position, then the log's last
            if app.position(RELAY_POSITION) < (app.recorder.max_notification_id() or 0):
                return False
        return True

    def _unprocessed(self, upstream: str, position: int, wanted: set[str], partition: int = 0) -> bool:
        """Whether the upstream stored an event the follower subscribes to after ``position``
        in ``partition`` (a follower's position stops at the last event it subscribes to)."""
        app = self.app(upstream)
        later = app.recorder.select_notifications(start=position, limit=10_000, inclusive_of_start=False)
        partitions = self.settings.event_partitions
        return any(
            n.topic.rsplit(".", 1)[-1] in wanted
            and (
                partitions <= 1
                or partition_of(case_key(app.mapper.to_domain_event(n)), partitions) == partition
            )
            for n in later
        )


class ServerPlatform(Platform):
    """One process per service (``keten run <service>``) on RabbitMQ and PostgreSQL."""

    def __init__(
        self,
        servers: Servers,
        extra_env: dict[str, str] | None = None,
        notification_replicas: int = 1,
        log_dir: Path | None = None,
        services: tuple[str, ...] = SERVICES,
    ):
        self.servers = servers
        self.services = services
        #: The letters go to a folder of the platform's own, removed with it, and are laid out
        #: as on Kubernetes: notification's timer off, ``keten letters render`` a process of its
        #: own (the CronJob's; ``render_letters``), so that their CPU is counted apart.
        self.letters = Path(tempfile.mkdtemp(prefix="keten-bench-letters-"))
        #: Settings every service process gets beside the servers' (``KETEN_CONSUMER_BATCH``, ...).
        self.extra_env = {
            "KETEN_LETTER_DIR": str(self.letters),
            "KETEN_LETTER_RENDER_INTERVAL": "0",
            **(extra_env or {}),
        }
        self.settings = servers.settings(**self.extra_env)
        self.amqp_url = servers.amqp_uri
        #: Replicas of notification (each its own process, ``KETEN_REPLICA``), and where each
        #: writes its log (JSON, INFO: the streams it took), when given.
        self.notification_replicas = notification_replicas
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self._apps = {}

    def cpu_meter(self) -> CpuMeter:
        return CpuMeter(
            [p.pid for p in self.processes],
            self.servers.admin_dsn,
            urlsplit(self.servers.database_url).port or 5432,
        )

    def round_trips(self) -> RoundTrips:
        broker = BrokerAdmin.from_amqp_uri(self.servers.amqp_uri, self.servers.management_api)
        return RoundTrips(
            self.servers.admin_dsn,
            self.servers.database,
            broker.api,
            broker.vhost,
            broker.user,
            broker.password,
        )

    def replica_log(self, replica: int) -> Path:
        assert self.log_dir is not None
        return self.log_dir / f"notification-{replica}.log"

    def start(self) -> None:
        env = {**os.environ, **self.servers.env(**self.extra_env)}
        subprocess.run(
            [sys.executable, "-m", "keten.cli", "migrate"], env=env, check=True, capture_output=True
        )
        ports = {}
        for name in self.services:
            replicas = self.notification_replicas if name == "notification" else 1
            for replica in range(replicas):
                process_env = {**env, "OPS_PORT": str(port := free_port())}
                ports[f"{name}-{replica}"] = port
                stderr: Any = None
                if replicas > 1:
                    process_env.update(
                        KETEN_REPLICA=str(replica),
                        KETEN_REPLICAS=str(replicas),
                        KETEN_LOG_LEVEL="INFO",
                        KETEN_LOG_FORMAT="json",
                    )
                    if self.log_dir is not None:
                        stderr = self.replica_log(replica).open("ab")
                self.processes.append(
                    subprocess.Popen(  # noqa: S603 (our own command line)
                        [sys.executable, "-m", "keten.cli", "run", name],
                        env=process_env,
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                        preexec_fn=stop_with_parent,
                    )
                )
                if stderr is not None:
                    stderr.close()  # the process has its own copy
        from keten.platform import service_class
        from shared.dependencies import ApplicationProvider

        for name in self.services:
            provider = next(
                p for p in vars(service_class(name)).values() if isinstance(p, ApplicationProvider)
            )
            self._apps[name] = provider.app_cls(self.settings)
        # Processes start slowly on a loaded machine: waits while more of them get ready.
        ready = [False]

        def all_ready() -> bool:
            ready[:] = [_ready(port) for port in ports.values()]
            return all(ready)

        wait_until("every service is ready", all_ready, 3 * STALL, progress=lambda: sum(ready))

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        for app in self._apps.values():
            app.close()
        shutil.rmtree(self.letters, ignore_errors=True)

    def render_letters(self) -> LetterRun:
        """``keten letters render`` run to its end, as the CronJob runs it: the letters it laid
        out and its CPU."""
        env = {**os.environ, **self.servers.env(**self.extra_env)}
        finished = run_to_end([sys.executable, "-m", "keten.cli", "letters", "render"], env)
        said = re.match(r"(\d+) letter\(s\) ready", finished.stdout)
        if finished.returncode != 0 or said is None:
            last = (finished.stderr.strip().splitlines() or ["no output"])[-1]
            raise BenchError(f"keten letters render failed (exit {finished.returncode}): {last}")
        return LetterRun(int(said[1]), finished.cpu_seconds * 1000)


@dataclass(frozen=True)
class LetterRun:
    letters: int
    cpu_ms: float


class EmbeddedPlatform(Platform):
    """Every service in this process: SQLite files and the in-process broker."""

    def __init__(self, var_dir: str):
        from shared import transport

        transport.reset()
        self.settings = Settings.from_env(
            {
                "KETEN_VAR_DIR": var_dir,
                "GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}",
                "KETEN_PURGE_INTERVAL": "0",
            }
        )
        self.amqp_url = self.settings.amqp_uri
        self._apps = {}

    def start(self) -> None:
        from keten.platform import build_runner
        from shared.dependencies import ApplicationProvider

        self.runner = build_runner(self.settings, list(SERVICES))
        self.runner.start()
        for container in self.runner.containers:
            for dependency in container.dependencies:
                if isinstance(dependency, ApplicationProvider):
                    self._apps[container.service_name] = dependency.app

    def stop(self) -> None:
        self.runner.stop()


# -- 2. end to end ---------------------------------------------------------------------------------
class NotificationWatch:
    """Notices each share's notification as it is recorded, by reading the notification
    service's log after where it last looked (every 50 ms, so that looking costs the machine
    little). ``recorded`` holds when each was stored: the event's own timestamp, so the time
    between looks adds nothing to a latency."""

    POLL = 0.05

    def __init__(self, platform: Platform):
        self.platform = platform
        self.app = platform.app("notification")
        self.position = self.app.recorder.max_notification_id() or 0
        self.recorded: dict[uuid.UUID, float] = {}
        self._stop = False
        self._thread = eventlet.spawn(self._run)

    def _run(self) -> None:
        while not self._stop:
            found = self.app.recorder.select_notifications(
                start=self.position, limit=1000, topics=[NOTIFICATION_TOPIC], inclusive_of_start=False
            )
            self.platform.own_transactions += 1
            for notification in found:
                event = self.app.mapper.to_domain_event(notification)
                self.recorded[notification.originator_id] = event.timestamp.timestamp()
                self.position = notification.id
            eventlet.sleep(self.POLL if len(found) < 1000 else 0)

    def stop(self) -> None:
        self._stop = True
        self._thread.wait()


@dataclass
class Sent:
    notification: uuid.UUID
    at: float  # wall clock (seconds since the epoch), as the notification's timestamp


class Agency:
    """Gemeente Utrecht on the bus: signed commands, with confirms, answers to its inbox."""

    def __init__(self, platform: Platform):
        self.platform = platform
        credentials = register_new_credentials(platform.settings, SENDER, platform.amqp_url)
        self.client = AgencyClient(credentials)
        self.client.connect()
        self.secret = platform.settings.pseudonym_secret

    def send(self, command: tuple[str, str, dict[str, Any]]) -> None:
        self.client.send(*command)

    def share(self, case: CaseCommands) -> Sent:
        command = case.share()
        at = time.time()
        self.send(command)
        body = command[2]
        shared = share_id(uuid.UUID(body["request_id"]), RECIPIENT)
        return Sent(notification_id(shared, pseudonymise(case.bsn, self.secret)), at)

    def close(self) -> None:
        self.client.close()


def register_cases(platform: Platform, agency: Agency, count: int, spread: int = 1) -> list[CaseCommands]:
    """``count`` cases registered and active everywhere; with ``spread`` partitions, case
    ``n`` is in partition ``n % spread`` (every partition gets its share)."""
    cases = [CaseCommands(_case_in(number % spread, spread), citizen_bsn(number)) for number in range(count)]
    for case in cases:
        for command in case.setup():
            agency.send(command)
    sharing = platform.app("data_sharing")
    active = 0

    def registered() -> bool:
        nonlocal active
        with sharing.sql.transaction(commit=False) as cur:
            active = cur.execute(
                f"SELECT count(*) FROM {sharing.cases.table} WHERE status = 'active'"
            ).fetchone()[0]
        return bool(active >= count and platform.caught_up())

    wait_until(f"{count} cases are active to every service", registered, STALL, progress=lambda: active)
    return cases


def _case_in(partition: int, partitions: int) -> str:
    while partition_of(case_id := str(uuid.uuid4()), partitions) != partition:
        pass
    return case_id


@dataclass
class Throughput:
    shares_per_s: float
    notified: int  # of the shares sent
    timed_out: str | None = None  # what it waited for when it gave up, else None


def max_throughput(
    platform: Platform,
    agency: Agency,
    cases: list[CaseCommands],
    shares: int,
    tick: Callable[[], None] | None = None,
) -> Throughput:
    """Shares per second: all requests sent at once, timed until the last one's notification and
    retention schedule are recorded (everything downstream caught up). Gives up when nothing
    moves for ``STALL`` seconds, with the rate of what got through until then."""
    watch = NotificationWatch(platform)
    started = time.monotonic()
    sent = [agency.share(cases[number % len(cases)]) for number in range(shares)]
    timed_out = None
    try:
        wait_until(
            "every share is notified",
            lambda: len(watch.recorded) >= shares,
            STALL,
            progress=lambda: len(watch.recorded),
            tick=tick,
        )
        wait_until("retention and the overview caught up", platform.caught_up, STALL, tick=tick)
    except BenchError as exc:
        timed_out = str(exc)
    finally:
        watch.stop()
    notified = sum(1 for s in sent if s.notification in watch.recorded)
    if notified < shares and timed_out is None:
        raise BenchError(f"{shares - notified} shares were not notified")
    return Throughput(notified / (time.monotonic() - started), notified, timed_out)


def latencies_at(
    platform: Platform, agency: Agency, cases: list[CaseCommands], rate: float, seconds: float
) -> tuple[list[float], str | None]:
    """Milliseconds from each request to its notification recorded, at a fixed offered load
    (requests are sent on schedule whatever the answers: an open loop); and what it waited for
    when it gave up (those not notified by then are left out), else ``None``."""
    watch = NotificationWatch(platform)
    sent: list[Sent] = []
    started = time.monotonic()
    total = max(1, int(rate * seconds))
    for number in range(total):
        eventlet.sleep(max(0.0, started + number / rate - time.monotonic()))
        sent.append(agency.share(random.choice(cases)))  # noqa: S311 (not a secret)
    timed_out = None
    try:
        wait_until(
            "every share is notified",
            lambda: all(s.notification in watch.recorded for s in sent),
            STALL,
            progress=lambda: len(watch.recorded),
        )
        wait_until("retention and the overview caught up", platform.caught_up, STALL)
    except BenchError as exc:
        timed_out = str(exc)
    finally:
        watch.stop()
    notified = [s for s in sent if s.notification in watch.recorded]
    return [(watch.recorded[s.notification] - s.at) * 1000 for s in notified], timed_out


def purge_all(platform: Platform, agency: Agency, cases: list[CaseCommands]) -> float:
    """Seconds to purge every case, closed beforehand: keys destroyed and every service's
    personal read-model rows gone. Purges as ``keten purge --as-of`` would, years ahead."""
    from keten.purge import run_purge

    for case in cases:
        agency.send(case.close())
    retention = platform.app("retention")
    open_cases = len(cases)

    def closed() -> bool:
        nonlocal open_cases
        with retention.sql.transaction(commit=False) as cur:
            open_cases = cur.execute(
                f"SELECT count(*) FROM {retention.schedule.table}"
                " WHERE record_kind = 'case_records' AND status = 'open'"
            ).fetchone()[0]
        return bool(open_cases == 0 and platform.caught_up())

    wait_until("every case is closed everywhere", closed, STALL, progress=lambda: open_cases)
    started = time.monotonic()
    with open(os.devnull, "w") as quiet, redirect_stdout(quiet), redirect_stderr(quiet):
        run_purge(
            False, datetime.now(UTC) + timedelta(days=365 * 20), progress=False, settings=platform.settings
        )
    sharing = platform.app("data_sharing")
    left = len(cases)

    def forgotten() -> bool:
        nonlocal left
        with sharing.sql.transaction(commit=False) as cur:
            left = cur.execute(f"SELECT count(*) FROM {sharing.cases.table}").fetchone()[0]
        return bool(left == 0 and platform.caught_up())

    wait_until("every service forgot the purged rows", forgotten, STALL, progress=lambda: left)
    return time.monotonic() - started


def idle_cost(platform: ServerPlatform, seconds: float, settling: Settling | None = None) -> dict[str, float]:
    """What the services do with nothing to do: CPU (percent of one core, their PostgreSQL
    backends included) and store transactions per second, over ``seconds``. With ``settling``,
    looks at the counts every second meanwhile (the next part's counts before it settle while
    the services idle, instead of after)."""
    meter, trips = platform.cpu_meter(), platform.round_trips()
    eventlet.sleep(1.5)  # statistics of the work just done reach pg_stat_database (within 1 s)
    meter.start()
    before = trips.counts()
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        eventlet.sleep(1.0)
        meter.sample()
        if settling is not None:
            settling.look()
    cpu = meter.stop()
    elapsed = time.monotonic() - started
    transactions = trips.counts().db_transactions - before.db_transactions
    return {
        "seconds": elapsed,
        "cpu_percent_of_a_core": cpu["total_ms"] / elapsed / 10,
        "keten_cpu_percent": cpu["keten_ms"] / elapsed / 10,
        "postgres_cpu_percent": cpu["postgres_ms"] / elapsed / 10,
        "db_transactions_per_s": transactions / elapsed,
    }


# -- the run ---------------------------------------------------------------------------------------
class BenchError(RuntimeError):
    pass


#: A wait gives up when what it waits for has not moved for this long (so the time a part may
#: take grows with how slow the machine is that day, not with a guess made beforehand).
STALL = 60.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(
    sizes: Sizes,
    out: Callable[[str], None] = print,
    results_path: Path = RESULTS,
    amqp: str | None = None,
    dsn: str | None = None,
) -> dict[str, Any]:
    """Runs every part at ``sizes`` in a vhost and database of its own on the servers ``amqp`` and
    ``dsn`` (default: this machine's, or ``BENCH_AMQP_URI`` and ``BENCH_DATABASE_URL``).

    Writes ``results_path`` however it ends: a part that timed out keeps what it measured and
    is named in ``timed_out``; the parts that need it are left out."""
    amqp = amqp or os.environ.get("BENCH_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
    dsn = dsn or os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    results: dict[str, Any] = {"sizes": asdict(sizes), "machine": machine(), "timed_out": {}}
    try:
        with timed("total", results):
            _run_parts(sizes, out, results, amqp, dsn)
    finally:
        results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        results_path.parent.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=2) + "\n")
        for line in table(results):
            out(line)
    return results


@contextmanager
def timed(name: str, results: dict[str, Any]) -> Iterator[None]:
    """Adds the wall seconds of the block to ``part_seconds[name]`` in the results, however the
    block ends (what each part of the run takes, to see where a run's time goes)."""
    began = time.monotonic()
    try:
        yield
    finally:
        seconds = results.setdefault("part_seconds", {})
        seconds[name] = round(seconds.get(name, 0.0) + time.monotonic() - began, 2)


@contextmanager
def part(name: str, results: dict[str, Any], out: Callable[[str], None]) -> Iterator[None]:
    """A part of the run: when it times out, the run goes on with the next part."""
    try:
        yield
    except BenchError as exc:
        results["timed_out"][name] = str(exc)
        out(f"{name}: {exc}")


def _run_parts(
    sizes: Sizes, out: Callable[[str], None], results: dict[str, Any], amqp: str, dsn: str
) -> None:
    timed_out = results["timed_out"]
    with isolated_servers(amqp, dsn) as servers:
        out(f"raw limit: {sizes.shares} messages through RabbitMQ into PostgreSQL ...")
        with timed("raw", results):
            results["raw_per_s"] = raw_limit(servers, sizes.shares)

        out(f"end to end: {sizes.cases} cases, {sizes.shares} share requests ...")
        server_platform = ServerPlatform(servers)
        agency = None
        try:
            with timed("start", results):
                server_platform.start()  # inside: processes that started are stopped if one is not ready
                agency = Agency(server_platform)
            with part("register", results, out), timed("register", results):
                cases = register_cases(server_platform, agency, sizes.cases)
            if "register" in timed_out:
                return
            out(f"idle: {sizes.idle_seconds:.0f} s with nothing to do ...")
            with timed("idle", results):
                settling = broker_quiet(server_platform)  # the end-to-end part's count before it
                results["idle"] = idle_cost(server_platform, sizes.idle_seconds, settling)
            with timed("end_to_end", results):
                end_to_end(server_platform, agency, cases, sizes, results, settling)
            if "end_to_end" in timed_out:
                return
            rate = results["e2e_shares_per_s"] / 2
            out(f"latency at half the maximum ({rate:.0f} shares/s for {sizes.latency_seconds:.0f} s) ...")
            with timed("latency", results):
                latencies, late = latencies_at(server_platform, agency, cases, rate, sizes.latency_seconds)
            if late:
                timed_out["latency"] = late
            results["latency_offered_per_s"] = rate
            if latencies:
                results["latency_ms"] = {
                    "p50": percentile(latencies, 0.50),
                    "p95": percentile(latencies, 0.95),
                    "p99": percentile(latencies, 0.99),
                    "samples": len(latencies),
                }
            out(f"purge: {len(cases)} due cases ...")
            with part("purge", results, out), timed("purge", results):
                # The time for purge_cases cases: 10,000 in the full run.
                results["purge_cases"] = len(cases)
                results["purge_10k_s"] = purge_all(server_platform, agency, cases)
        finally:
            if agency is not None:
                agency.close()
            with timed("stop", results):
                server_platform.stop()

    with isolated_servers(amqp, dsn) as servers:
        out(
            f"overview: loading {sizes.overview_events} share events"
            f" over {sizes.overview_citizens} citizens ..."
        )
        with timed("overview_load", results):
            loaded = loader.load(servers.settings(), sizes.overview_citizens, sizes.overview_events)
        results["overview_load_s"] = loaded.seconds
        out(f"overview: {sizes.overview_queries} random citizens ...")
        with timed("overview_queries", results):
            timings = loader.overview_latencies(servers.settings(), loaded.bsns, sizes.overview_queries)
        results["overview_p50_ms"] = percentile(timings, 0.50)
        results["overview_p99_ms"] = percentile(timings, 0.99)

    if sizes.unbatched:
        out(f"end to end one message at a time (KETEN_CONSUMER_BATCH=1): {sizes.shares} share requests ...")
        with (
            part("unbatched", results, out),
            timed("unbatched", results),
            isolated_servers(amqp, dsn) as servers,
        ):
            results["unbatched"] = unbatched(servers, sizes, results["raw_per_s"])
    else:
        out("end to end one message at a time (KETEN_CONSUMER_BATCH=1): left out (make bench runs it)")

    out(f"partitions: 2 notification replicas over {PARTITIONS} partitions ...")
    with (
        part("partitions", results, out),
        timed("partitions", results),
        isolated_servers(amqp, dsn) as servers,
    ):
        results["partitions"] = partitioned_replicas(servers, sizes)

    out(f"embedded: {sizes.embedded_shares} share requests ...")
    with part("embedded", results, out), timed("embedded", results):
        results["embedded_shares_per_s"] = embedded_throughput(sizes)


def unbatched(servers: Servers, sizes: Sizes, raw_per_s: float) -> dict[str, Any]:
    """The end-to-end part again with every consumer taking one message per transaction and
    ack (``KETEN_CONSUMER_BATCH=1``): what batching saves, measured in the same run."""
    platform = ServerPlatform(servers, {"KETEN_CONSUMER_BATCH": "1"})
    agency = None
    measured: dict[str, Any] = {"raw_per_s": raw_per_s, "timed_out": {}}
    try:
        platform.start()
        agency = Agency(platform)
        cases = register_cases(platform, agency, sizes.cases)
        end_to_end(platform, agency, cases, sizes, measured)
    finally:
        if agency is not None:
            agency.close()
        platform.stop()
    if measured["timed_out"]:
        raise BenchError(next(iter(measured["timed_out"].values())))
    keys = (
        "e2e_shares_per_s",
        "ratio_e2e_to_raw",
        "cpu_ms_per_share",
        "round_trips_per_share",
        "cost",
        "letters",
    )
    return {key: measured[key] for key in keys if key in measured}


#: The partitions of the event streams in the replicas part (two per replica).
PARTITIONS = 4
#: The services the replicas part needs: the cases registered and activated, the shares decided,
#: and notification's replicas. Consent and retention follow them and feed nothing back into a
#: share of an active case without objections, so they are not started (about a third of the
#: part's start on two cores).
REPLICAS_PART_SERVICES = ("case_registration", "data_sharing", "notification")


def partitioned_replicas(servers: Servers, sizes: Sizes) -> dict[str, Any]:
    """Two replicas of notification (``KETEN_REPLICA`` 0 and 1) over ``PARTITIONS`` partitions
    of the event streams: which partitions each took (from its log), and whether any share was
    lost, doubled or reordered within its case (the order of the notifications in the
    notification log against the order of the shares in data_sharing's log)."""
    with tempfile.TemporaryDirectory(prefix="keten-bench-replicas-") as logs:
        platform = ServerPlatform(
            servers,
            # Standby for the other's partitions only after the part: each keeps its own.
            {"KETEN_EVENT_PARTITIONS": str(PARTITIONS), "KETEN_STANDBY_DELAY": "3600"},
            notification_replicas=2,
            log_dir=Path(logs),
            services=REPLICAS_PART_SERVICES,
        )
        agency = None
        try:
            platform.start()
            agency = Agency(platform)
            cases = register_cases(platform, agency, max(PARTITIONS * 2, sizes.cases // 4), spread=PARTITIONS)
            measured = max_throughput(platform, agency, cases, sizes.shares // 2)
            if measured.timed_out:
                raise BenchError(measured.timed_out)
            taken = [sorted(_partitions_taken(platform.replica_log(n))) for n in range(2)]
            order = _order_per_case(platform)
        finally:
            if agency is not None:
                agency.close()
            platform.stop()
    return {
        "partitions": PARTITIONS,
        "shares": sizes.shares // 2,
        "shares_per_s": measured.shares_per_s,
        "replica_partitions": taken,
        "disjoint": not set(taken[0]) & set(taken[1]),
        "all_taken": set(taken[0]) | set(taken[1]) == set(range(PARTITIONS)),
        **order,
    }


def _partitions_taken(log_path: Path) -> set[int]:
    """The partitions a replica took events of, from its JSON log (``stream``, ``streams``)."""
    taken: set[int] = set()
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        for stream in [record.get("stream"), *(record.get("streams") or ())]:
            if isinstance(stream, str) and ".p" in stream:
                taken.add(int(stream.rpartition(".p")[2]))
    return taken


def _order_per_case(platform: Platform) -> dict[str, int]:
    """Shares lost, doubled and cases reordered: per case, the shares in data_sharing's log
    order against the notifications in the notification log's order."""
    shared: dict[str, list[str]] = {}
    for event in _events(platform.app("data_sharing"), "DataShared"):
        shared.setdefault(str(event.case_id), []).append(str(event.originator_id))
    notified: dict[str, list[str]] = {}
    for event in _events(platform.app("notification"), "NotificationScheduled"):
        notified.setdefault(str(event.case_id), []).append(str(event.share_id))
    notification = platform.app("notification")
    with notification.sql.transaction(commit=False) as cur:
        # Twice in the citizen's overview: what a double would look like to them.
        doubled = cur.execute(
            "SELECT count(*) FROM (SELECT entry_id FROM notification_overview_entries"
            " WHERE kind = 'share' GROUP BY entry_id HAVING count(*) > 1) AS twice"
        ).fetchone()[0]
    lost = reordered = 0
    for case_id, shares in shared.items():
        told = notified.get(case_id, [])
        lost += len(set(shares) - set(told))
        reordered += [s for s in told if s in set(shares)] != [s for s in shares if s in set(told)]
    return {"lost": lost, "doubled": int(doubled), "cases": len(shared), "cases_reordered": reordered}


def _events(app: Any, name: str) -> Iterator[Any]:
    """The events of kind ``name`` in ``app``'s notification log, in its order."""
    position = 0
    while True:
        page = app.recorder.select_notifications(start=position, limit=1000, inclusive_of_start=False)
        if not page:
            return
        for notification in page:
            if notification.topic.rsplit(".", 1)[-1] == name:
                yield app.mapper.to_domain_event(notification)
        position = page[-1].id


def end_to_end(
    platform: ServerPlatform,
    agency: Agency,
    cases: list[CaseCommands],
    sizes: Sizes,
    results: dict[str, Any],
    settling: Settling | None = None,
) -> None:
    """The maximum throughput, and what it cost: CPU of the services and their backends, and
    round trips, per share. ``settling``: the counts before the part, when they began to settle
    earlier (during the idle window)."""
    meter, trips = platform.cpu_meter(), platform.round_trips()
    (settling or broker_quiet(platform)).wait()
    before = trips.counts()  # the broker's counts as settled, the store's as of now
    own_before = platform.own_transactions
    meter.start()
    last_sample = time.monotonic()

    def sample_now_and_then() -> None:
        nonlocal last_sample
        if time.monotonic() - last_sample >= 1.0:
            meter.sample()
            last_sample = time.monotonic()

    measured = max_throughput(platform, agency, cases, sizes.shares, tick=sample_now_and_then)
    cpu = meter.stop()
    if measured.timed_out:
        results["timed_out"]["end_to_end"] = measured.timed_out
    results["e2e_shares_per_s"] = measured.shares_per_s
    results["e2e_notified"] = measured.notified
    results["ratio_e2e_to_raw"] = measured.shares_per_s / results["raw_per_s"]
    if not measured.notified:
        return
    after = broker_quiet(platform).wait()
    own = platform.own_transactions - own_before
    trips_per_share = per_share(after - before, own, measured.notified)
    # The letters after the counts: what the benchmark reads while it waits for them is not
    # the services' work.
    letters = lay_out_letters(platform, results)
    cpu = {**cpu, "letters_ms": letters.cpu_ms if letters else 0.0}
    cpu["total_ms"] = cpu["keten_ms"] + cpu["letters_ms"] + cpu["postgres_ms"]
    results["cpu_ms_per_share"] = cpu["total_ms"] / measured.notified
    results["round_trips_per_share"] = trips_per_share["total"]
    results["cost"] = {
        "cpu_ms": cpu,
        "keten_cpu_ms_per_share": cpu["keten_ms"] / measured.notified,
        "letters_cpu_ms_per_share": cpu["letters_ms"] / measured.notified,
        "postgres_cpu_ms_per_share": cpu["postgres_ms"] / measured.notified,
        "round_trips_per_share": trips_per_share,
        "benchmark_own_transactions": own,
    }


def lay_out_letters(platform: ServerPlatform, results: dict[str, Any]) -> LetterRun | None:
    """The part's letters laid out by ``keten letters render`` in a process of its own, as the
    CronJob does, once notification has handed every one over (delivered all that is due).
    Then once more, as the CronJob's next run: it must find none (a letter is laid out once),
    and what it costs is a run's start (Python, the settings, fpdf2) without letters. Under
    ``letters`` in the results; ``None`` (and the reason in ``timed_out``) when it failed."""
    notification = platform.app("notification")
    undelivered = -1

    def delivered() -> bool:
        nonlocal undelivered
        platform.own_transactions += 1
        with notification.sql.transaction(commit=False) as cur:
            undelivered = cur.execute(
                f"SELECT count(*) FROM {notification.deliveries.deliveries_table}"
                f" WHERE status IN {DUE_STATUSES}"
            ).fetchone()[0]
        return bool(undelivered == 0)

    try:
        wait_until("every notification is delivered", delivered, STALL, progress=lambda: undelivered)
        laid_out = platform.render_letters()
        next_run = platform.render_letters()
    except BenchError as exc:
        results["timed_out"]["letters"] = str(exc)
        return None
    count = laid_out.letters
    results["letters"] = {
        "count": count,
        "cpu_ms": laid_out.cpu_ms,
        "cpu_ms_per_letter": laid_out.cpu_ms / count if count else None,
        # Less what a run with nothing to do costs: the layout of a letter alone.
        "layout_cpu_ms_per_letter": max(0.0, laid_out.cpu_ms - next_run.cpu_ms) / count if count else None,
        "empty_run_cpu_ms": next_run.cpu_ms,
        "laid_out_again": next_run.letters,
    }
    return laid_out


def broker_quiet(platform: ServerPlatform) -> Settling:
    """The counts (the broker's and the store's) of what the platform did until now, settling
    (``Settling``): from when every relay has published what its service stored, since then
    nothing of the work it was given is still to be sent."""
    wait_until("every relay published what its service stored", platform.relays_published, STALL)
    return platform.round_trips().settling()


def embedded_throughput(sizes: Sizes) -> float:
    with tempfile.TemporaryDirectory(prefix="keten-bench-") as var_dir:
        embedded = EmbeddedPlatform(var_dir)
        embedded.start()
        agency = Agency(embedded)
        try:
            cases = register_cases(embedded, agency, max(1, sizes.embedded_shares // 5))
            measured = max_throughput(embedded, agency, cases, sizes.embedded_shares)
            if measured.timed_out:
                raise BenchError(measured.timed_out)
            return measured.shares_per_s
        finally:
            agency.close()
            embedded.stop()


def table(results: dict[str, Any]) -> list[str]:
    """The printed summary; a part without a result shows "-" (it timed out, or what it needs did)."""
    sizes = results["sizes"]

    def value(key: str, form: str) -> str:
        return form.format(results[key]) if key in results else "-"

    latency = results.get("latency_ms")
    idle = results.get("idle")
    letters, cost = results.get("letters"), results.get("cost", {})
    rows = [
        ("raw limit (RabbitMQ -> PostgreSQL)", value("raw_per_s", "{:.0f} msg/s"), ""),
        (
            "Keten end to end",
            value("e2e_shares_per_s", "{:.0f} shares/s"),
            value("ratio_e2e_to_raw", "ratio {:.2f} (target >= 0.25)"),
        ),
        (
            "CPU per share (services + letters + backends)",
            value("cpu_ms_per_share", "{:.1f} ms"),
            "target <= 10 ms",
        ),
        (
            "letters (keten letters render, its own process)",
            f"{letters['count']} letters, {letters['cpu_ms']:.0f} ms CPU:"
            f" {cost.get('letters_cpu_ms_per_share', 0):.1f} ms per share,"
            f" {letters['layout_cpu_ms_per_letter'] or 0:.1f} ms per letter"
            f" + {letters['empty_run_cpu_ms']:.0f} ms a run"
            if letters
            else "-",
            "in the CPU per share",
        ),
        ("round trips per share (SQL tx + messages)", value("round_trips_per_share", "{:.1f}"), ""),
        (
            "idle services (CPU, store transactions)",
            f"{idle['cpu_percent_of_a_core']:.1f}% of a core, {idle['db_transactions_per_s']:.0f} tx/s"
            if idle
            else "-",
            "",
        ),
        (
            f"latency at {results.get('latency_offered_per_s', 0):.0f} shares/s",
            f"p50 {latency['p50']:.0f} / p95 {latency['p95']:.0f} / p99 {latency['p99']:.0f} ms"
            if latency
            else "-",
            "p99 target < 250 ms",
        ),
        (
            f"overview ({sizes['overview_events']} events)",
            f"p50 {results['overview_p50_ms']:.1f} / p99 {results['overview_p99_ms']:.1f} ms"
            if "overview_p99_ms" in results
            else "-",
            "p99 target < 10 ms",
        ),
        (
            f"purge {results.get('purge_cases', 0)} cases",
            value("purge_10k_s", "{:.1f} s"),
            "target < 30 s for 10,000",
        ),
        ("embedded end to end", value("embedded_shares_per_s", "{:.0f} shares/s"), ""),
    ]
    unbatched = results.get("unbatched")
    if not sizes.get("unbatched", True):
        rows.append(
            ("one message per transaction (BATCH=1)", "-", "left out of the quick run: make bench runs it")
        )
    elif unbatched:
        rows.append(
            (
                "one message per transaction (BATCH=1)",
                f"{unbatched.get('e2e_shares_per_s', 0):.0f} shares/s,"
                f" {unbatched.get('cpu_ms_per_share', 0):.1f} ms CPU,"
                f" {unbatched.get('round_trips_per_share', 0):.1f} round trips per share",
                "against the batched rows above",
            )
        )
    replicas = results.get("partitions")
    if replicas:
        rows.append(
            (
                f"2 notification replicas, {replicas['partitions']} partitions",
                f"{replicas['replica_partitions'][0]} / {replicas['replica_partitions'][1]},"
                f" lost {replicas['lost']}, doubled {replicas['doubled']},"
                f" reordered {replicas['cases_reordered']} of {replicas['cases']} cases",
                "disjoint" if replicas["disjoint"] and replicas["all_taken"] else "NOT disjoint",
            )
        )
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    lines = [f"{name:<{width}}  {shown:<{value_width}}  {note}".rstrip() for name, shown, note in rows]
    seconds = results.get("part_seconds")
    if seconds:
        lines.append(
            "seconds per part: " + ", ".join(f"{name} {value:.1f}" for name, value in seconds.items())
        )
    for name, reason in results.get("timed_out", {}).items():
        lines.append(f"timed out: {name}: {reason}")
    return lines


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "system": platform.platform(),
        "load_average_at_start": list(os.getloadavg()),
    }


# -- small helpers ----------------------------------------------------------------------------------
def wait_until(
    what: str,
    condition: Callable[[], bool],
    timeout: float,
    progress: Callable[[], object] | None = None,
    tick: Callable[[], None] | None = None,
) -> None:
    """Looks every 100 ms until ``condition``; gives up after ``timeout`` seconds without a
    change in ``progress`` (when given), or in all."""
    deadline = time.monotonic() + timeout
    seen = progress() if progress else None
    while not condition():
        if progress is not None and (now := progress()) != seen:
            seen, deadline = now, time.monotonic() + timeout
        if time.monotonic() > deadline:
            stalled = " with no progress" if progress else ""
            raise BenchError(f"timed out after {timeout:.0f}s{stalled} waiting until {what}")
        if tick is not None:
            tick()
        eventlet.sleep(0.1)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ready(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False
