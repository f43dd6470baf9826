"""``keten ledger``: an agency's accountability ledger, for its privacy officer (FG) and its
supervisor.

keten ledger --credentials FILE [--since DATE] [--until DATE] [--case ID] [--subject PSEUDONYM]
             [--side provided|received|both] [--format table|csv|json] [--out FILE]

Asks the platform over the bus with the agency's own credentials (what ``keten agency add``
wrote; the ``get_ledger`` command, signed with its key), so it shows that agency's ledger and
no other. ``--format csv`` and ``--format json`` are the export for a supervisor: one row per
decision, every field of docs/asyncapi.yaml's ``LedgerEntry``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from keten.cli.errors import CommandFailed
from keten_client import AgencyClient, Credentials
from keten_client import CommandFailed as Refused
from shared.config import ConfigurationError

#: The CSV's columns: every field of a ledger entry, in the contract's order.
COLUMNS = (
    "side",
    "share_id",
    "request_id",
    "case_id",
    "subject",
    "from_agency",
    "to_agency",
    "direction",
    "form",
    "meeting_id",
    "outcome",
    "reason_code",
    "purpose",
    "categories",
    "sender_ground",
    "sender_provision",
    "recipient_ground",
    "recipient_provision",
    "special_grounds",
    "catalogue_version",
    "override_id",
    "decided_at",
    "received_at",
    "corrections",
    "erasure_passed_on_at",
)


def add_parser(commands: Any) -> None:
    ledger = commands.add_parser(
        "ledger", help="your agency's accountability ledger: every share it provided and received"
    )
    ledger.add_argument(
        "--credentials", type=Path, required=True, help="your agency's credentials (keten agency add --out)"
    )
    ledger.add_argument("--since", help="decided on or after this date (YYYY-MM-DD)")
    ledger.add_argument("--until", help="decided on or before this date (YYYY-MM-DD)")
    ledger.add_argument("--case", dest="case_id", help="one case only (its id)")
    ledger.add_argument("--subject", help="one subject only (the pseudonym the ledger names)")
    ledger.add_argument("--side", choices=("provided", "received", "both"), default="both")
    ledger.add_argument("--format", choices=("table", "csv", "json"), default="table")
    ledger.add_argument("--out", type=Path, help="write to FILE instead of standard output")
    ledger.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer")


def run(args: argparse.Namespace, out: Any = None) -> int:
    try:
        credentials = Credentials.load(args.credentials)
    except (OSError, ValueError, TypeError):
        raise ConfigurationError(f"cannot read agency credentials from {args.credentials}") from None
    query = {
        name: getattr(args, name)
        for name in ("since", "until", "case_id", "subject")
        if getattr(args, name) is not None
    }
    try:
        with AgencyClient(credentials) as client:
            answer = client.request(
                "data_sharing", "get_ledger", {"side": args.side, **query}, timeout=args.timeout
            )
    except Refused as refused:
        raise CommandFailed(f"the platform refused: {refused}") from None
    except TimeoutError:
        raise CommandFailed(f"no answer within {args.timeout:.0f}s; is data_sharing running?") from None
    text = render(answer, args.format)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"{len(answer['entries'])} entries written to {args.out}", file=out or sys.stdout)
    else:
        (out or sys.stdout).write(text)
    return 0


def render(answer: dict[str, Any], form: str) -> str:
    """The ledger (``get_ledger``'s answer) as a table for people, CSV or JSON."""
    if form == "json":
        return json.dumps(answer, indent=2, ensure_ascii=False) + "\n"
    if form == "csv":
        return ledger_csv(answer["entries"])
    return ledger_table(answer)


def ledger_csv(entries: list[dict[str, Any]]) -> str:
    """One row per decision; lists joined by ``;``, special grounds as ``category=ground``, each
    correction as ``<when> <by> <reason>``."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for entry in entries:
        row = {name: entry.get(name) for name in COLUMNS}
        row["categories"] = ";".join(entry["categories"])
        row["special_grounds"] = ";".join(f"{k}={v}" for k, v in sorted(entry["special_grounds"].items()))
        row["corrections"] = ";".join(
            f"{c['corrected_at']} {c['corrected_by']} {c['reason_code']}" for c in entry["corrections"]
        )
        writer.writerow({name: "" if value is None else value for name, value in row.items()})
    return buffer.getvalue()


def ledger_table(answer: dict[str, Any]) -> str:
    period = f"{answer.get('since') or 'the start'} to {answer.get('until') or 'today'}"
    lines = [f"Ledger of {answer['agency']}, {period}: {len(answer['entries'])} decision(s)"]
    for entry in answer["entries"]:
        other = entry["to_agency"] if entry["side"] == "provided" else entry["from_agency"]
        arrow = "to" if entry["side"] == "provided" else "from"
        received = entry["received_at"] or "-"
        lines.append(
            f"{entry['decided_at'][:19]}  {entry['side']:<8} {arrow} {other}  case {entry['case_id']}"
            f"  subject {entry['subject']}  {entry['form'] or '?'}"
            + (f" (meeting {entry['meeting_id']})" if entry["meeting_id"] else "")
            + f"  {entry['outcome']} ({entry['reason_code']})  {entry['purpose']}:"
            f" {', '.join(entry['categories'])}  ground {entry['sender_ground'] or '-'}"
            f" [{entry['sender_provision'] or '-'}]  catalogue {entry['catalogue_version']}"
            f"  inbox {received[:19]}"
        )
    return "\n".join(lines) + "\n"
