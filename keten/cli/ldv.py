"""``keten ldv register``: the register of processing activities (Logboek Dataverwerkingen).

Generated from the catalogue (``shared.ldv_register``). Printed as JSON; ``--write`` keeps it in
``KETEN_LDV_REGISTER_FILE`` (default ``var/ldv-register.json``) together with every earlier
version found there, so that records made under an older catalogue still resolve; the gateway
serves that file (``GET /api/ldv/processing-activities``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from shared.catalogue import load_catalogue
from shared.config import Settings
from shared.ldv_register import ActivityRegister


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "ldv", help="Logboek Dataverwerkingen: the register of processing activities"
    )
    actions = parser.add_subparsers(dest="ldv_command", required=True)
    register = actions.add_parser(
        "register", help="the processing activities LDV records point at, generated from the catalogue"
    )
    register.add_argument(
        "--write",
        action="store_true",
        help="keep it (with the earlier versions already kept) in KETEN_LDV_REGISTER_FILE",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    register = ActivityRegister.load(settings.ldv_register_url, load_catalogue(), settings.ldv_register_file)
    if args.write and settings.ldv_register_file is not None:
        register.write(settings.ldv_register_file)
        print(
            f"wrote {settings.ldv_register_file}: {len(register.current)} activities, "
            f"{len(register.earlier)} earlier versions (catalogue {register.catalogue_version})"
        )
        return 0
    sys.stdout.write(json.dumps(register.document(), indent=2, ensure_ascii=False) + "\n")
    return 0
