"""Commands agencies send to the platform (over RPC, HTTP or ``keten.commands``).

Strict: unknown fields are an error (a typo must not silently drop data). Every command names
its agency and carries the schema version it was written against. Personal data arrives here in
plaintext and is sealed or pseudonymised by the receiving service before anything is stored.
"""

from shared.contracts.commands.base import COMMAND_SCHEMAS, CommandSchema, load_command
from shared.contracts.commands.case_registration import CloseCaseSchema, RegisterCaseSchema
from shared.contracts.commands.consent import GiveConsentSchema
from shared.contracts.commands.data_sharing import RequestShareSchema
from shared.contracts.commands.notification import EndDeferralSchema, ExtendDeferralSchema
from shared.contracts.commands.retention import (
    ErasureRequestSchema,
    LiftLegalHoldSchema,
    PlaceLegalHoldSchema,
)

__all__ = [
    "COMMAND_SCHEMAS",
    "CloseCaseSchema",
    "CommandSchema",
    "EndDeferralSchema",
    "ErasureRequestSchema",
    "ExtendDeferralSchema",
    "GiveConsentSchema",
    "LiftLegalHoldSchema",
    "PlaceLegalHoldSchema",
    "RegisterCaseSchema",
    "RequestShareSchema",
    "load_command",
]
