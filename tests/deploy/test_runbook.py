"""docs/operations.md matches the platform it describes: its commands exist, its settings are
the ones the code reads, its paths are the ones the processes serve."""

from __future__ import annotations

import re
from pathlib import Path

from shared import ops
from tests.deploy.test_compose import known_settings
from tests.deploy.test_kubernetes import cli_commands

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = (ROOT / "docs" / "operations.md").read_text()
#: Commands the runbook may name before the CLI has them (it must say they are planned).
PLANNED_COMMANDS: set[str] = set()


def test_every_keten_command_the_runbook_mentions_is_one_the_cli_knows():
    mentioned = set(re.findall(r"`keten ([a-z][a-z-]*)", RUNBOOK))
    assert {"run", "migrate", "rewrap-keys", "probe", "purge"} <= mentioned
    unknown = mentioned - cli_commands() - PLANNED_COMMANDS
    assert not unknown, f"the runbook names commands the CLI does not have: {unknown}"
    for command in PLANNED_COMMANDS - cli_commands():
        assert re.search(rf"`keten {command}`\)? is planned|`keten {command}` \| planned", RUNBOOK)


def test_every_command_of_the_cli_is_in_the_runbooks_command_table():
    table = RUNBOOK[RUNBOOK.index("## Commands") :]
    for command in cli_commands():
        assert f"`keten {command}" in table, command


def test_every_setting_the_runbook_names_is_one_the_code_reads():
    named = set(re.findall(r"`((?:KETEN|AMQP|DATABASE|OPS|GATEWAY)_[A-Z_]+)`", RUNBOOK))
    assert {"KETEN_MASTER_KEY", "KETEN_MASTER_KEY_PREVIOUS", "OPS_PORT"} <= named
    assert named <= known_settings()


def test_the_operations_endpoints_are_the_ones_the_processes_serve():
    described = set(re.findall(r"`GET (/[a-z]+)`", RUNBOOK.split("## Deploying")[0]))
    assert set(ops.PATHS) <= described
