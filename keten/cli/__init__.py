"""``keten``: run the platform or one service, and the operator's commands.

keten run                 all services in one process (embedded default: SQLite under var/,
                          in-process broker, gateway on http://127.0.0.1:8000)
keten run data_sharing    one service, configured from the environment (production)
keten demo [--url URL]    one share end to end; starts an embedded platform unless --url
                          (--throwaway-key: sign with a key registered for the demo only)
keten migrate             checks the broker, creates every table and declares the broker's
                          topology, then exits
keten rewrap-keys         wraps every data key under the current KETEN_MASTER_KEY (rotation)
keten probe live|ready    asks this host's operations endpoint (OPS_PORT); exit 0 if healthy
keten purge [--dry-run]   crypto-shreds the records whose retention period is over (--as-of DATE
                          pretends it is DATE: for demonstrations, it destroys records early)

keten bench [--quick]     the benchmark against the raw limit of RabbitMQ and PostgreSQL
                          (docs/performance.md); writes bench/results.json; from a checkout only;
                          --quick --unbatched: with the one-message-per-transaction part
keten rebuild overview    rebuilds the citizens' overview from the events alone (with progress)
keten rebuild ledger      rebuilds the agencies' accountability ledger from data_sharing's events

keten agency add|rotate|remove|list AGENCY    agencies' bus credentials (docs/agencies.md)
keten ledger --credentials FILE [--since/--until DATE] [--format table|csv|json]
                          an agency's accountability ledger, for its FG and the supervisor
keten log verify [--since HEAD.json | --copy COPY.json]    checks the verifiable logs of decisions
keten log head            the latest signed tree head of each log
keten contract asyncapi|openapi|rabbitmq [--check|--write]    the published contract, from the code

A command that cannot do its work says so in one line on stderr, with what to do; logs go to
stderr as JSON lines (``KETEN_LOG_FORMAT=text`` for people, ``KETEN_LOG_LEVEL``).

This module only dispatches: ``keten probe`` is every container's healthcheck and must answer
in milliseconds, so it imports nothing but the standard library (``keten.cli.probe``);
``keten letters render`` (a CronJob) loads only the settings and the letters' layout
(``keten.cli.letters``); every other command loads the platform (``keten.cli.commands``, which
starts eventlet first).
"""

from __future__ import annotations

import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["probe"]:
        from keten.cli.probe import main as probe

        return probe(args[1:])
    if args == ["letters", "render"]:  # the CronJob: without the platform (keten.cli.letters)
        from keten.cli.letters import main as letters

        return letters()
    from keten.cli.commands import main as commands

    return commands(args)


def build_parser() -> Any:
    """The whole command line (for its help and for tests that read it)."""
    from keten.cli.commands import build_parser as build

    return build()
