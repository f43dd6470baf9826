"""``keten log``: check the verifiable logs (``shared.tlog``) and show their signed heads.

keten log verify [--service S]             every log against the stored events and its heads
keten log verify --since HEAD.json         the log now extends an earlier head (consistency)
keten log verify --copy COPY.json [--key]  offline: each proof in a citizen's copy or a receipt
keten log head [--service S]               the latest signed head of each log (signs one if it grew)

Each finding is one line naming the log and the leaf index; any finding exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.config import Settings
from shared.tlog import (
    LogKey,
    TransparencyLog,
    TreeHead,
    head_signature_valid,
    proof_blocks,
    unb64,
    verify_extends,
    verify_log,
    verify_proof_block,
)

#: The services that keep a verifiable log.
LOGGED_SERVICES = ("consent", "data_sharing", "notification", "retention")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("log", help="check the verifiable logs of decisions; show their heads")
    actions = parser.add_subparsers(dest="action", required=True)
    verify = actions.add_parser("verify", help="check logs against the stored events, heads, or a copy")
    verify.add_argument("--service", choices=LOGGED_SERVICES, help="only this service's log")
    verify.add_argument(
        "--since", type=Path, metavar="HEAD.json", help="check that the log extends this head"
    )
    verify.add_argument(
        "--copy", type=Path, metavar="COPY.json", help="offline: the proofs in a citizen's copy or a receipt"
    )
    verify.add_argument("--key", help="with --copy: the log's public key (base64) to hold the heads to")
    head = actions.add_parser("head", help="print each log's latest signed head (JSON)")
    head.add_argument("--service", choices=LOGGED_SERVICES, help="only this service's log")


def needs_store(args: argparse.Namespace) -> bool:
    return not (args.action == "verify" and args.copy is not None)


def run(args: argparse.Namespace, settings: Settings | None) -> int:
    if args.action == "verify" and args.copy is not None:
        return verify_copy(args.copy, unb64(args.key) if args.key else None)
    assert settings is not None
    services = [args.service] if args.service else list(LOGGED_SERVICES)
    if args.action == "head":
        heads = []
        for name in services:
            with opened(name, settings) as app:
                heads.append(TransparencyLog.of(app).head(max_age=0).to_json())
        print(json.dumps({"logs": heads}, indent=2))
        return 0
    if args.since is not None:
        return verify_since(args.since, settings)
    return verify_stores(services, settings)


def verify_stores(services: list[str], settings: Settings) -> int:
    failures = 0
    for name in services:
        with opened(name, settings) as app:
            report = verify_log(app)
        for finding in report.findings:
            print(finding.line())
        failures += len(report.findings)
        verdict = "verifies" if report.ok else f"FAILS ({len(report.findings)} finding(s))"
        print(
            f"{name}: {verdict}: {report.leaves} leaves, {report.checked} checked against their events,"
            f" {report.purged} of purged cases, {report.heads} signed heads"
        )
    return 1 if failures else 0


def verify_since(path: Path, settings: Settings) -> int:
    earlier = TreeHead.from_json(_read_json(path))
    if earlier.log not in LOGGED_SERVICES:
        print(f"{path}: a head of no log this platform keeps", file=sys.stderr)
        return 1
    with opened(earlier.log, settings) as app:
        log = TransparencyLog.of(app)
        now = log.head(max_age=0)
        key = LogKey(settings.master_key, earlier.log)
        if not head_signature_valid(earlier, key.public):
            print(f"{earlier.log}: the earlier head of size {earlier.size} is not signed by the log key")
            return 1
        if earlier.size > now.size:
            print(
                f"{earlier.log}: leaf {now.size}: the log has {now.size} leaves,"
                f" fewer than the earlier head's {earlier.size}"
            )
            return 1
        proof = log.consistency(earlier.size, now.size) if earlier.size else []
    if earlier.size and not verify_extends(earlier, now, proof):
        print(
            f"{earlier.log}: the log of size {now.size} does not extend"
            f" the earlier head of size {earlier.size}"
        )
        return 1
    print(f"{earlier.log}: the log of size {now.size} extends the earlier head of size {earlier.size}")
    return 0


def verify_copy(path: Path, public_key: bytes | None) -> int:
    """Offline: needs nothing but the file (and, to pin it, the log's public key)."""
    blocks = proof_blocks(_read_json(path))
    if not blocks:
        print(f"{path}: holds no proof of the verifiable log")
        return 1
    bad = [where for where, block in blocks if not verify_proof_block(block, public_key)]
    for where in bad:
        print(f"{path}: {where}: the proof does not verify against its signed head")
    if not bad:
        print(f"{path}: {len(blocks)} proof(s) verify against their signed heads")
    return 1 if bad else 0


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise SystemExit(f"keten log: cannot read {path} as JSON") from None


def change_share_event(settings: Settings, share_id: str) -> None:
    """For the demo: what a database administrator could do behind the platform's back, change
    the stored ``DataShared`` of a share (its categories) straight in the database."""
    with opened("data_sharing", settings) as app:
        recorder: Any = app.recorder
        table, column = (
            (recorder.events_table, "notification_id")
            if app.sql.dialect == "postgresql"
            else (recorder.events_table_name, "rowid")
        )
        with app.sql.transaction() as cur:
            [position] = cur.execute(
                "SELECT notification_id FROM data_sharing_log_leaves"
                " WHERE originator_id = ? AND originator_version = 1",
                (share_id,),
            ).fetchone()
            [state] = cur.execute(f"SELECT state FROM {table} WHERE {column} = ?", (position,)).fetchone()
            changed = bytes(state).replace(b'"debts"', b'"housing"', 1)
            cur.execute(f"UPDATE {table} SET state = ? WHERE {column} = ?", (changed, position))


@contextmanager
def opened(name: str, settings: Settings) -> Iterator[Any]:
    """The service's application on the platform's store (not its service: no bus needed)."""
    if name == "consent":
        from services.consent.application import ConsentUseCases as cls
    elif name == "data_sharing":
        from services.data_sharing.application import DataSharingUseCases as cls  # type: ignore[assignment]
    elif name == "notification":
        from services.notification.application import NotificationUseCases as cls  # type: ignore[assignment]
    else:
        from services.retention.application import RetentionUseCases as cls  # type: ignore[assignment]
    app = cls(settings)
    try:
        yield app
    finally:
        app.close()
