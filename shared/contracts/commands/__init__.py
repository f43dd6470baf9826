"""Commands agencies send to the platform (over RPC, HTTP or ``keten.commands``).

Strict: unknown fields are an error (a typo must not silently drop data). Every command names
its agency and carries the schema version it was written against. Personal data arrives here in
plaintext and is sealed or pseudonymised by the receiving service before anything is stored.
"""

from shared.contracts.commands.base import COMMAND_SCHEMAS, CommandSchema, load_command
from shared.contracts.commands.case_registration import (
    ActivateCaseSchema,
    AddParticipantSchema,
    CloseCaseSchema,
    RegisterCaseSchema,
    RemoveParticipantSchema,
)
from shared.contracts.commands.consent import (
    EndSafetyOverrideSchema,
    GiveConsentSchema,
    LodgeObjectionSchema,
    RecordSafetyOverrideSchema,
    WithdrawConsentSchema,
    WithdrawObjectionSchema,
)
from shared.contracts.commands.data_sharing import CorrectShareSchema, RequestShareSchema
from shared.contracts.commands.notification import EndDeferralSchema, ExtendDeferralSchema
from shared.contracts.commands.retention import (
    ErasureRequestSchema,
    LiftLegalHoldSchema,
    PlaceLegalHoldSchema,
)

__all__ = [
    "COMMAND_SCHEMAS",
    "ActivateCaseSchema",
    "AddParticipantSchema",
    "CloseCaseSchema",
    "CommandSchema",
    "CorrectShareSchema",
    "EndDeferralSchema",
    "EndSafetyOverrideSchema",
    "ErasureRequestSchema",
    "ExtendDeferralSchema",
    "GiveConsentSchema",
    "LiftLegalHoldSchema",
    "LodgeObjectionSchema",
    "PlaceLegalHoldSchema",
    "RecordSafetyOverrideSchema",
    "RegisterCaseSchema",
    "RemoveParticipantSchema",
    "RequestShareSchema",
    "WithdrawConsentSchema",
    "WithdrawObjectionSchema",
    "load_command",
]
