"""``keten agency``: give an agency its credentials for the bus, rotate them, take them away.

keten agency add AGENCY [--out FILE]      broker user + key pair; prints the connection settings
keten agency rotate AGENCY [--out FILE]   new password and key pair; the old key verifies for
                                          --overlap-hours more (default 24), the old password not
keten agency remove AGENCY                deletes the broker user, revokes every key at once
keten agency list                         every key on record, with its state

An agency that generates its own key pair passes the public halves (``--signing-public-key``,
``--encryption-public-key``, base64 of the raw 32 bytes) and its private keys never leave it.
See docs/agencies.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.agencies import AgencyKey, AgencyRegistry, write_private
from shared.broker_admin import BrokerAdmin, BrokerAdminError
from shared.catalogue import load_catalogue
from shared.config import ConfigurationError, Settings
from shared.topology import COMMANDS_EXCHANGE, inbox_queue_name
from shared.wire import KeyPair, b64, unb64


def add_parser(commands: Any) -> None:
    agency = commands.add_parser("agency", help="agencies' credentials for the message bus")
    actions = agency.add_subparsers(dest="action", required=True)
    for action, text in (("add", "create the agency's broker user and keys"), ("rotate", "new credentials")):
        parser = actions.add_parser(action, help=text)
        parser.add_argument("agency")
        parser.add_argument("--out", type=Path, help="write the settings (with secrets) to FILE, mode 0600")
        parser.add_argument("--signing-public-key", help="the agency's own Ed25519 public key (base64)")
        parser.add_argument("--encryption-public-key", help="the agency's own X25519 public key (base64)")
        if action == "rotate":
            parser.add_argument("--overlap-hours", type=float, default=24.0)
    remove = actions.add_parser("remove", help="delete the broker user and revoke every key")
    remove.add_argument("agency")
    actions.add_parser("list", help="every agency key on record")


def run(args: argparse.Namespace, settings: Settings | None = None, out: Any = None) -> int:
    settings = settings or Settings.from_env()
    out = out or sys.stdout
    registry = AgencyRegistry.for_settings(settings)
    if args.action == "list":
        for key in registry.all_keys():
            print(f"{key.agency}\t{key.key_id}\t{_state(key)}\tcreated {key.created_at[:19]}", file=out)
        return 0
    if args.agency not in load_catalogue().agencies:
        raise ConfigurationError(f"{args.agency} is not an agency of the catalogue")
    if settings.embedded_broker:
        raise ConfigurationError("agencies connect to a real broker: set AMQP_URI (see docs/agencies.md)")
    admin = BrokerAdmin.from_amqp_uri(settings.amqp_uri, settings.rabbitmq_management_url)
    try:
        if args.action == "remove":
            revoked = registry.revoke(args.agency)
            deleted = admin.delete_agency_user(args.agency)
            print(
                f"{args.agency}: {revoked} key(s) revoked; broker user {'deleted' if deleted else 'absent'}",
                file=out,
            )
            return 0
        if args.action == "add" and admin.user_exists(args.agency):
            raise ConfigurationError(f"{args.agency} already has a broker user: use 'keten agency rotate'")
        keys, public = _keys(args)
        if args.action == "rotate":
            key = registry.rotate(
                args.agency,
                public.signing_public_key,
                public.encryption_public_key,
                timedelta(hours=args.overlap_hours),
            )
        else:
            key = registry.add_key(args.agency, public.signing_public_key, public.encryption_public_key)
        password = admin.create_agency_user(args.agency)
    except BrokerAdminError as error:
        raise ConfigurationError(str(error)) from None
    document = {
        "agency": args.agency,
        "amqp_url": admin.amqp_url(args.agency, password, settings.agency_amqp_url, settings.amqp_uri),
        "commands_exchange": COMMANDS_EXCHANGE,
        "command_routing_key": f"{args.agency}.<service>.<command>",
        "inbox_queue": inbox_queue_name(args.agency),
        "key_id": key.key_id,
        **(
            {
                "signing_private_key": b64(keys.signing_private_key),
                "encryption_private_key": b64(keys.encryption_private_key),
            }
            if keys
            else {}
        ),
        "docs": "docs/agencies.md, docs/asyncapi.yaml",
    }
    if args.out:
        write_private(args.out, document)
        public_part = {k: v for k, v in document.items() if "private" not in k and k != "amqp_url"}
        print(json.dumps({**public_part, "written_to": str(args.out)}, indent=2), file=out)
    else:
        print(json.dumps(document, indent=2), file=out)
    return 0


def _keys(args: argparse.Namespace) -> tuple[KeyPair | None, Any]:
    """A fresh key pair, or the agency's own public keys (then no private key is printed)."""
    if args.signing_public_key or args.encryption_public_key:
        if not (args.signing_public_key and args.encryption_public_key):
            raise ConfigurationError("give both --signing-public-key and --encryption-public-key")
        return None, _PublicKeys(unb64(args.signing_public_key), unb64(args.encryption_public_key))
    keys = KeyPair.generate()
    return keys, keys


class _PublicKeys:
    def __init__(self, signing: bytes, encryption: bytes):
        self.signing_public_key = signing
        self.encryption_public_key = encryption


def _state(key: AgencyKey) -> str:
    if key.revoked_at:
        return f"revoked {key.revoked_at[:19]}"
    if key.expires_at:
        ended = datetime.fromisoformat(key.expires_at) <= datetime.now(UTC)
        return f"{'expired' if ended else 'valid until'} {key.expires_at[:19]}"
    return "valid"
