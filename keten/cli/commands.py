"""Every ``keten`` command but ``probe`` (the command list: ``keten.cli``). Loads the platform,
so eventlet patches the standard library first."""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r"(?s)\s*Eventlet is deprecated")
import eventlet  # noqa: E402

eventlet.monkey_patch()  # before anything opens a socket: nameko needs a green world

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

from keten import contract  # noqa: E402
from keten.cli import agency, ldv, ledger  # noqa: E402
from keten.cli import log as log_command  # noqa: E402
from keten.cli.errors import CommandFailed, check_broker, check_database, explain  # noqa: E402
from keten.cli.letters import render_letters  # noqa: E402
from keten.platform import SERVICES, build_runner, nameko_config, service_class  # noqa: E402
from keten.purge import run_purge  # noqa: E402
from keten.requests import AgencyAction, run_agency_action, run_escalation  # noqa: E402
from shared import logs  # noqa: E402
from shared.catalogue import load_catalogue  # noqa: E402
from shared.config import ConfigurationError, Settings, log_settings  # noqa: E402
from shared.dependencies import settings_from  # noqa: E402

log = logging.getLogger("keten")

#: Seconds a graceful stop may take; below Kubernetes' default grace period of 30 s.
STOP_TIMEOUT = 20


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keten", description="Keten: the ketenoverleg platform.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run services (all of them by default)")
    run.add_argument("services", nargs="*", metavar="SERVICE", help=f"one or more of: {', '.join(SERVICES)}")

    demo = commands.add_parser("demo", help="one share end to end, printed as the citizen sees it")
    demo.add_argument("--url", help="drive a running platform instead of starting one")
    demo.add_argument(
        "--throwaway-key",
        action="store_true",
        help="with --url: sign with a key registered for Gemeente Utrecht for this demo only (revoked "
        "afterwards); needs the platform's database settings, e.g. in its migrate container. For a "
        "demonstration stack, never a platform with real agencies",
    )
    demo.add_argument(
        "--tamper",
        action="store_true",
        help="afterwards, change the share's stored event behind the platform's back and show that "
        "`keten log verify` names its leaf (the embedded platform only)",
    )

    commands.add_parser(
        "migrate", help="create every table and declare the broker's exchanges and queues, then exit"
    )

    rewrap = commands.add_parser(
        "rewrap-keys", help="wrap every data key under KETEN_MASTER_KEY (master key rotation)"
    )
    rewrap.add_argument(
        "--check", action="store_true", help="only count keys per master key; exit 1 if any is old"
    )

    probe = commands.add_parser(
        "probe", help="ask this host's operations endpoint on OPS_PORT (for healthchecks)"
    )
    probe.add_argument("probe", choices=("live", "ready"))

    purge = commands.add_parser(
        "purge", help="destroy the keys of records whose retention period is over (crypto-shredding)"
    )
    purge.add_argument("--dry-run", action="store_true", help="list what would be purged; change nothing")
    purge.add_argument(
        "--as-of",
        type=_moment,
        metavar="DATE",
        help="purge what is due at DATE (ISO-8601) instead of now; a later date destroys records "
        "before their retention period ends: for demonstrations and tests only",
    )
    purge.add_argument("--no-progress", action="store_true", help="no progress bar")

    letters = commands.add_parser(
        "letters",
        help="lay out the letters handed over (KETEN_LETTER_DIR/pending) as PDFs for the printing "
        "service: what it runs when it collects, if KETEN_LETTER_RENDER_INTERVAL is 0",
    )
    letters.add_argument("action", choices=("render",))

    requests = commands.add_parser("requests", help="citizens' requests on the law's clock")
    requests.add_argument(
        "action",
        choices=("escalate", "list", "answer", "extend", "correct"),
        help="escalate: remind agencies, mark late requests overdue; list, answer, extend, correct: "
        "as an agency (--as) over the gateway, signed with its keys from var/agencies/; correct runs "
        "the correction a citizen asked for (rule 6) and answers their request with it",
    )
    requests.add_argument("request_id", nargs="?", help="answer, extend, correct: the request's id")
    requests.add_argument(
        "--as-of",
        type=_moment,
        metavar="DATE",
        help="escalate as at DATE (ISO-8601) instead of now; a later date makes requests overdue "
        "before their deadline: for demonstrations and tests only",
    )
    requests.add_argument("--as", dest="agency", default="gemeente-utrecht", help="the agency acting")
    requests.add_argument("--url", default="http://127.0.0.1:8000", help="the gateway")
    requests.add_argument("--outcome", choices=("granted", "partly_granted", "refused"))
    requests.add_argument("--reason-nl", help="the reason for the citizen, in plain Dutch")
    requests.add_argument("--reason-en", help="the reason for the citizen, in English")
    requests.add_argument("--until", help="extend: the new last day to answer (YYYY-MM-DD)")
    requests.add_argument(
        "--nothing-shared",
        action="store_true",
        help="answer a correction request granted: none of the data was shared through Keten, so "
        "there is nobody here to pass the correction on to",
    )
    requests.add_argument("--share", dest="share_id", help="correct: a share the data went out in")
    requests.add_argument(
        "--content-file",
        metavar="FILE",
        help="correct: the corrected content, read from FILE ('-': standard input)",
    )
    requests.add_argument(
        "--reason-code",
        default="citizen_request",
        help="correct: why (correction_reasons in the catalogue; default citizen_request)",
    )
    requests.add_argument(
        "--answer",
        choices=("granted", "partly_granted", "pending"),
        default="granted",
        help="correct: how the correction answers the request (partly_granted: say what was not "
        "corrected in --reason-nl/--reason-en; pending: the request stays open)",
    )

    bench = commands.add_parser(
        "bench", help="the benchmark against the raw limit of RabbitMQ and PostgreSQL (docs/performance.md)"
    )
    bench.add_argument("--quick", action="store_true", help="smaller sizes, the same keys")
    bench.add_argument(
        "--unbatched",
        action="store_true",
        help="with --quick: also the end-to-end part one message per transaction (the full run has it)",
    )
    rebuild = commands.add_parser("rebuild", help="rebuild a projection from the events alone")
    rebuild.add_argument(
        "projection",
        choices=("overview", "ledger", "requests"),
        help="overview: the citizens' overview (inzage); ledger: the agencies' accountability ledger; "
        "requests: the index of citizens' requests (the listings and the law's clock read it)",
    )
    rebuild.add_argument("--no-progress", action="store_true", help="no progress bar")

    agency.add_parser(commands)
    ledger.add_parser(commands)
    log_command.add_parser(commands)
    contract.add_parser(commands)
    ldv.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one command. A failure is one line on stderr saying what to do (exit 1; 2 for a
    setting that is missing or malformed), never a traceback: that goes to the log at DEBUG."""
    parser = build_parser()
    args = parser.parse_args(argv)
    settings: Settings | None = None
    try:
        level, log_format = log_settings()
        if args.command in ("demo", "bench") and not os.environ.get("KETEN_LOG_LEVEL"):
            level, log_format = "WARNING", "text"  # these print for people; logs only trouble
        logs.configure(level, log_format)
        if args.command == "run":
            unknown = [name for name in args.services if name not in (*SERVICES, "all")]
            if unknown:
                parser.error(f"unknown service {unknown[0]}; choose from {', '.join(SERVICES)}")
            return run_services(args.services)
        if args.command == "demo":
            return run_demo(args.url, throwaway_key=args.throwaway_key, tamper=args.tamper)
        if args.command == "contract":
            return contract.run(args)
        if args.command == "probe":
            from keten.cli import probe

            return probe.main([args.probe])
        if args.command == "bench":
            return run_bench(quick=args.quick, unbatched=args.unbatched)
        if args.command == "letters":
            return render_letters(Settings.from_env())
        if args.command == "requests" and args.action != "escalate":
            if args.action != "list" and not args.request_id:
                parser.error(f"requests {args.action} needs the request's id")
            if args.action == "correct" and not (args.share_id and args.content_file):
                parser.error("requests correct needs --share and --content-file")
            return run_agency_action(
                args.action,
                args.agency,
                args.url,
                args.request_id,
                AgencyAction(
                    outcome=args.outcome,
                    reason_nl=args.reason_nl,
                    reason_en=args.reason_en,
                    until=args.until,
                    nothing_shared=args.nothing_shared,
                    share_id=args.share_id,
                    content_file=args.content_file,
                    reason_code=args.reason_code,
                    answer=args.answer,
                ),
            )
        if args.command == "ledger":  # the agency's tool: over the bus, no platform store
            return ledger.run(args)
        if args.command == "log" and not log_command.needs_store(args):
            return log_command.run(args, None)
        # The rest work on the platform's stores: they check the database before anything else.
        settings = Settings.from_env()
        if args.command == "ldv":
            return ldv.run(args, settings)
        if args.command == "migrate":
            return migrate(settings)
        check_database(settings)
        if args.command == "agency":
            return agency.run(args, settings)
        if args.command == "log":
            return log_command.run(args, settings)
        if args.command == "rewrap-keys":
            return rewrap_keys(settings, check_only=args.check)
        if args.command == "rebuild" and args.projection == "ledger":
            return rebuild_ledger(settings)
        if args.command == "rebuild" and args.projection == "requests":
            return rebuild_requests(settings)
        if args.command == "rebuild":
            return rebuild_overview(progress=not args.no_progress, settings=settings)
        if args.command == "purge":
            return run_purge(args.dry_run, args.as_of, progress=not args.no_progress, settings=settings)
        if args.command == "requests":
            return run_escalation(args.as_of, settings=settings)
    except ConfigurationError as error:
        print(f"keten {args.command}: configuration error: {error}", file=sys.stderr)
        return 2
    except CommandFailed as error:
        return _failed(args.command, str(error))
    except KeyboardInterrupt:
        return _failed(args.command, "interrupted")
    except Exception as error:
        line = explain(error, settings)
        if line is None:
            log.debug("keten %s failed", args.command, exc_info=True)
            line = f"failed unexpectedly ({type(error).__name__}); KETEN_LOG_LEVEL=DEBUG shows where"
        return _failed(args.command, line)
    return 1


def _failed(command: str, line: str) -> int:
    print(f"keten {command}: {' '.join(line.split())}", file=sys.stderr)
    return 1


def run_services(names: list[str], settings: Settings | None = None) -> int:
    settings = settings or Settings.from_env()
    load_catalogue()  # a catalogue with a gap stops the start here, with one line naming the entry
    selected = list(SERVICES) if "all" in names or not names else names
    if settings.embedded_broker and len(selected) < len(SERVICES):
        raise ConfigurationError("the in-process broker only connects services in one process: set AMQP_URI")
    logs.set_process_service(selected[0] if len(selected) == 1 else None)
    runner = build_runner(settings, selected)
    stop = eventlet.event.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if not stop.ready():
            stop.send(signum)

    def on_death(container: Any) -> None:
        try:
            container.wait()
        except Exception as exc:
            log.critical("service %s died (%s); exiting", container.service_name, type(exc).__name__)
            if not stop.ready():
                stop.send("died")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.start()
    for container in runner.containers:
        eventlet.spawn(on_death, container)
    where = f"http://{settings.gateway_address}" if "gateway" in selected else "(no gateway)"
    mode = "embedded" if settings.embedded_broker else settings.amqp_uri.split("@")[-1]
    log.info("keten running: %s; broker %s; gateway %s", ", ".join(selected), mode, where)
    reason = stop.wait()
    log.info("stopping")
    if reason == "died":
        runner.kill()  # a dead service leaves the process useless: exit, let the supervisor restart it
        return 1
    try:
        with eventlet.Timeout(STOP_TIMEOUT):
            runner.stop()  # lets running workers finish
    except eventlet.Timeout:
        log.warning("services did not stop within %ss (broker unreachable?); killing them", STOP_TIMEOUT)
        runner.kill()
    return 0


def migrate(settings: Settings) -> int:
    """Creates every service's tables (events, read models, tracking) and the key store, and
    declares the broker's exchanges and queues; safe to run again (all of it is idempotent).
    The broker is checked first, then the database: a missing vhost or a wrong password stops
    it before any table is made."""
    from shared.agencies import AgencyRegistry
    from shared.application import vault_for
    from shared.dependencies import ApplicationProvider
    from shared.publishing import ConfirmingPublisher

    check_broker(settings)
    check_database(settings)
    vault_for(settings)
    AgencyRegistry.for_settings(settings)
    for name in SERVICES:
        for provider in vars(service_class(name)).values():
            if isinstance(provider, ApplicationProvider):
                provider.app_cls(settings).close()
                log.info("tables of %s ready", name)
    if settings.embedded_broker:
        log.info("embedded broker: nothing to declare (its queues live in the running process)")
    else:
        replaced = replace_changed_exchanges(settings)
        if replaced:
            log.warning("exchanges declared with other arguments replaced: %s", ", ".join(replaced))
        publisher = ConfirmingPublisher(settings.amqp_uri, partitions=settings.event_partitions)
        publisher.connect()
        publisher.close()
        retire_other_partitioning(settings)
        log.info("exchanges and queues declared")
    print("migrated: tables created, topology declared")
    return 0


def retire_other_partitioning(settings: Settings) -> None:
    """Unbinds the event queues of the other layout (one queue per consumer, or one per
    partition; ``shared.partitions``) from ``keten.events``, so that after a change of
    ``KETEN_EVENT_PARTITIONS`` no event goes into queues nobody consumes. What they still hold
    is the operator's to drain first (docs/operations.md)."""
    from kombu import Connection

    from shared.topology import EVENTS_EXCHANGE, SUBSCRIPTIONS, partition_exchange

    with Connection(settings.amqp_uri, connect_timeout=10) as connection:
        for service, keys in SUBSCRIPTIONS.items():
            for key in sorted(set(keys)):
                channel = connection.channel()
                try:
                    if settings.event_partitions > 1:
                        channel.queue_unbind(f"keten.{service}.events", EVENTS_EXCHANGE, key)
                    else:
                        channel.exchange_unbind(partition_exchange(service).name, EVENTS_EXCHANGE, key)
                except Exception:  # noqa: S110 - the other layout was never declared here
                    pass
                finally:
                    with contextlib.suppress(Exception):  # already closed by the broker
                        channel.close()


def replace_changed_exchanges(settings: Settings) -> list[str]:
    """Deletes each platform exchange that exists with other arguments than this release
    declares (e.g. without its alternate exchange), so that it can be declared anew; the queues'
    bindings to it are declared again with the topology. Returns the names replaced."""
    import amqp.exceptions
    from kombu import Connection

    from shared.topology import platform_exchanges

    replaced = []
    with Connection(settings.amqp_uri, connect_timeout=10) as connection:
        for exchange in platform_exchanges():
            channel = connection.channel()
            try:
                exchange(channel).declare()
            except amqp.exceptions.PreconditionFailed:
                channel = connection.channel()  # the refusal closed the other one
                channel.exchange_delete(exchange.name)
                exchange(channel).declare()
                replaced.append(exchange.name)
            finally:
                with contextlib.suppress(Exception):  # already closed by the broker
                    channel.close()
    return replaced


def rewrap_keys(settings: Settings, check_only: bool = False) -> int:
    """Moves every live data key under the current master key (see docs/operations.md)."""
    from shared.application import vault_for

    keys = vault_for(settings).keys
    if not check_only:
        done = keys.rewrap()
        print(f"re-wrapped {done} data keys under master key {keys.master_key_id}")
    counts = keys.count_by_master_key()
    old = sum(count for key_id, count in counts.items() if key_id != keys.master_key_id)
    print(f"{counts.get(keys.master_key_id, 0)} data keys under the current master key, {old} under others")
    return 1 if old else 0


def run_bench(quick: bool, unbatched: bool = False) -> int:
    """The benchmark, from a checkout: the wheel and the image leave it out."""
    try:
        from keten.bench import benchmark
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("keten.bench"):
            raise
        print(
            "keten bench: the benchmark is not in this installation; run it from a checkout (make bench)",
            file=sys.stderr,
        )
        return 2
    sizes = benchmark.QUICK if quick else benchmark.FULL
    benchmark.run(dataclasses.replace(sizes, unbatched=True) if unbatched else sizes)
    return 0


def run_demo(url: str | None, throwaway_key: bool = False, tamper: bool = False) -> int:
    """One share end to end: against ``url``, or on an embedded platform of its own (and with
    ``tamper``, a change of the share's stored event that the verifiable log catches)."""
    import requests

    from keten import demo

    try:
        if url:
            if tamper:
                raise CommandFailed("--tamper changes the embedded platform's own store: leave out --url")
            if not throwaway_key:
                demo.run_demo(url, credentials=demo.load_credentials())
                return 0
            settings = Settings.from_env()
            if not settings.uses_postgres:
                raise CommandFailed(
                    "--throwaway-key registers a key in the platform's database: run it where the"
                    " platform's DATABASE_URL is set (docker-compose: docker-compose run --rm migrate"
                    " keten demo --url http://gateway:8000 --throwaway-key)"
                )
            check_database(settings)
            with demo.throwaway_credentials(settings) as credentials:
                demo.run_demo(url, credentials=credentials)
            return 0
        with tempfile.TemporaryDirectory(prefix="keten-demo-") as var_dir:
            settings = Settings.from_env(
                {"KETEN_VAR_DIR": var_dir, "GATEWAY_ADDRESS": f"127.0.0.1:{_free_port()}"}
            )
            runner = build_runner(settings, list(SERVICES))
            runner.start()
            try:
                print("Started an embedded platform for the demo (its data is thrown away afterwards).")
                url = f"http://{settings.gateway_address}"
                result = demo.run_demo(url, credentials=demo.load_credentials(var_dir))
                print("9. `keten log verify` on the platform's stores: every leaf against its event.")
                settings = settings_from(nameko_config(settings))  # as its services read them
                if log_command.verify_stores(list(log_command.LOGGED_SERVICES), settings):
                    raise CommandFailed("the verifiable logs do not verify (above)")
                if tamper:
                    print(
                        "10. A database administrator changes the share's stored event"
                        " (debts becomes housing)"
                    )
                    print("   and `keten log verify` runs again:")
                    log_command.change_share_event(settings, result.share_id)
                    if not log_command.verify_stores(["data_sharing"], settings):
                        raise CommandFailed("the change of a stored event went unnoticed")
            finally:
                runner.stop()
        return 0
    except demo.DemoError as error:
        raise CommandFailed(str(error)) from None
    except requests.RequestException as error:
        raise CommandFailed(
            f"the platform at {url} stopped answering ({type(error).__name__}):"
            " see its logs, and run the demo again"
        ) from None


def rebuild_overview(progress: bool = True, settings: Settings | None = None) -> int:
    """Rebuilds the citizens' overview from the events alone: those of case_registration,
    consent, data_sharing and retention read from their stores, and the notification service's
    own. Run it with the notification service stopped (or expect it to catch up afterwards)."""
    from tqdm import tqdm

    from services.case_registration.application import CaseRegistrationUseCases
    from services.consent.application import ConsentUseCases
    from services.data_sharing.application import DataSharingUseCases
    from services.notification.application import NotificationUseCases
    from services.notification.overview import CitizenOverview
    from services.retention.application import RetentionUseCases
    from shared.contracts.envelope import ReceivedEvent, decode_event, encode_event

    settings = settings or Settings.from_env()
    upstream: list[ReceivedEvent] = []
    for cls in (CaseRegistrationUseCases, ConsentUseCases, DataSharingUseCases, RetentionUseCases):
        app = cls(settings)
        try:
            for notification in app.recorder.select_notifications(start=1, limit=10**9):
                message = encode_event(app.mapper.to_domain_event(notification), app.name, notification.id)
                if message is not None:
                    upstream.append(decode_event(message.body))
        finally:
            app.close()
    notifications = NotificationUseCases(settings)  # the notification service's store
    overview: CitizenOverview = notifications.overview
    try:
        total = len(upstream) + (notifications.recorder.max_notification_id() or 0)
        with tqdm(total=total, desc="rebuilding the overview", unit="event", disable=not progress) as bar:
            applied = overview.rebuild(upstream, progress=bar.update)
    finally:
        notifications.close()
    print(f"Rebuilt the citizens' overview from {applied} event(s).")
    return 0


def rebuild_ledger(settings: Settings) -> int:
    """Rebuilds the agencies' accountability ledger from data_sharing's events alone (its
    decisions and the inbox receipts), in one transaction."""
    from services.data_sharing.application import DataSharingUseCases

    sharing = DataSharingUseCases(settings)
    try:
        read = sharing.rebuild_ledger()
    finally:
        sharing.close()
    print(f"Rebuilt the ledger from {read} event(s).")
    return 0


def rebuild_requests(settings: Settings) -> int:
    """Writes the index of citizens' requests again from consent's events alone, in one
    transaction."""
    from services.consent.application import ConsentUseCases

    consent = ConsentUseCases(settings)
    try:
        written = consent.rebuild_request_index()
    finally:
        consent.close()
    print(f"Rebuilt the index of citizens' requests: {written} request(s).")
    return 0


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a date or time in ISO-8601, e.g. 2030-01-01") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
