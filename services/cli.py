"""``keten``: run the platform or one service, and the operator's commands.

keten run                 all services in one process (embedded default: SQLite under var/,
                          in-process broker, gateway on http://127.0.0.1:8000)
keten run data_sharing    one service, configured from the environment (production)
keten demo [--url URL]    one share end to end; starts an embedded platform unless --url
keten purge [--dry-run]   crypto-shreds the records whose retention period is over (--as-of DATE
                          pretends it is DATE: for demonstrations, it destroys records early)
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=r"(?s)\s*Eventlet is deprecated")
import eventlet  # noqa: E402

eventlet.monkey_patch()  # before anything opens a socket: nameko needs a green world

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

from services.platform import SERVICES, build_runner  # noqa: E402
from shared.config import ConfigurationError, Settings  # noqa: E402

log = logging.getLogger("keten")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keten", description="Keten: the ketenoverleg platform.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run services (all of them by default)")
    run.add_argument("services", nargs="*", metavar="SERVICE", help=f"one or more of: {', '.join(SERVICES)}")

    demo = commands.add_parser("demo", help="one share end to end, printed as the citizen sees it")
    demo.add_argument("--url", help="drive a running platform instead of starting one")

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

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "run":
            unknown = [name for name in args.services if name not in (*SERVICES, "all")]
            if unknown:
                parser.error(f"unknown service {unknown[0]}; choose from {', '.join(SERVICES)}")
            return run_services(args.services)
        if args.command == "demo":
            return run_demo(args.url)
        if args.command == "purge":
            return run_purge(args.dry_run, args.as_of, progress=not args.no_progress)
    except ConfigurationError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    return 1


def run_services(names: list[str], settings: Settings | None = None) -> int:
    settings = settings or Settings.from_env()
    selected = list(SERVICES) if "all" in names or not names else names
    if settings.embedded_broker and len(selected) < len(SERVICES):
        raise ConfigurationError("the in-process broker only connects services in one process: set AMQP_URI")
    runner = build_runner(settings, selected)
    stop = eventlet.event.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if not stop.ready():
            stop.send(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    runner.start()
    where = f"http://{settings.gateway_address}" if "gateway" in selected else "(no gateway)"
    mode = "embedded" if settings.embedded_broker else settings.amqp_uri.split("@")[-1]
    log.info("keten running: %s; broker %s; gateway %s", ", ".join(selected), mode, where)
    stop.wait()
    log.info("stopping")
    runner.stop()
    return 0


def run_demo(url: str | None) -> int:
    from services import demo

    if url:
        demo.run_demo(url)
        return 0
    with tempfile.TemporaryDirectory(prefix="keten-demo-") as var_dir:
        settings = Settings.from_env(
            {"KETEN_VAR_DIR": var_dir, "GATEWAY_ADDRESS": f"127.0.0.1:{_free_port()}"}
        )
        runner = build_runner(settings, list(SERVICES))
        runner.start()
        try:
            print("Started an embedded platform for the demo (its data is thrown away afterwards).")
            demo.run_demo(f"http://{settings.gateway_address}")
        finally:
            runner.stop()
    return 0


def run_purge(
    dry_run: bool, as_of: datetime | None, progress: bool = True, settings: Settings | None = None
) -> int:
    """Purges (or lists, with ``dry_run``) every purge unit due at ``as_of`` (default now).

    Works on the stores directly, so it runs whether or not the services do (a CronJob); the
    retention service's relay publishes the ``RecordsPurged`` events it records, and every
    service then forgets the purged rows. An interrupted run is finished by the next.
    """
    from tqdm import tqdm

    from services.retention.application import PurgeReport, Retention

    settings = settings or Settings.from_env()
    now = datetime.now(UTC)
    if as_of is not None and as_of > now:
        print(
            f"Purging as of {as_of.isoformat()}, a date still to come: records are destroyed "
            "before their retention period ends.",
            file=sys.stderr,
        )
    retention = Retention(settings)
    try:
        plan = retention.plan_purge(as_of or now)
        held = sum(1 for planned in plan if planned.on_hold)
        if dry_run:
            for planned in plan:
                item = planned.describe()
                print(
                    f"{item['due_at'][:10]}  case {item['case_id']}  {item['record_kind']:<13}"
                    f"  {item['records']:>3} record(s)  {item['rule']}"
                    + ("  ON HOLD (legal hold)" if item["on_hold"] else "")
                )
            print(
                f"{len(plan) - held} scope(s) due for purging, {held} suspended by a legal hold;"
                " dry run: nothing was purged."
            )
            return 0
        report = PurgeReport()
        for planned in tqdm(plan, desc="purging", unit="scope", disable=not progress or not plan):
            retention.purge(planned.unit, report)
        kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(report.by_kind.items()))
        print(
            f"Purged {report.purged} scope(s)"
            + (f" ({kinds})" if kinds else "")
            + f"; {report.held} suspended by a legal hold; {report.already} purged already."
        )
        return 0
    finally:
        retention.close()


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
