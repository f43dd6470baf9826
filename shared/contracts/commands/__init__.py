"""Commands agencies send to the platform (over RPC, HTTP or ``keten.commands``).

Strict: unknown fields are an error (a typo must not silently drop data). Every command names
its agency and carries the schema version it was written against. Each schema loads into a
frozen dataclass with an imperative name, defined beside it (``RegisterCaseSchema`` loads a
``RegisterCase``), through ``load_command``. A BSN is validated and replaced by the subject's
pseudonym as the command is loaded; other personal data arrives in plaintext and is sealed by
the receiving service before anything is stored.
"""

from shared.contracts.commands.base import COMMAND_SCHEMAS, Command, CommandSchema, dump_reply, load_command
from shared.contracts.commands.case_registration import (
    ActivateCase,
    ActivateCaseSchema,
    AddParticipant,
    AddParticipantSchema,
    CloseCase,
    CloseCaseSchema,
    GetCatalogue,
    GetCatalogueSchema,
    RegisterCase,
    RegisterCaseSchema,
    RemoveParticipant,
    RemoveParticipantSchema,
)
from shared.contracts.commands.consent import (
    EndSafetyOverride,
    EndSafetyOverrideSchema,
    GiveConsent,
    GiveConsentSchema,
    LodgeObjection,
    LodgeObjectionSchema,
    RecordSafetyOverride,
    RecordSafetyOverrideSchema,
    WithdrawConsent,
    WithdrawConsentSchema,
    WithdrawObjection,
    WithdrawObjectionSchema,
)
from shared.contracts.commands.data_sharing import (
    LEDGER_QUERY,
    CorrectShare,
    CorrectShareSchema,
    GetLedger,
    GetLedgerSchema,
    LedgerEntrySchema,
    LedgerSchema,
    RequestShare,
    RequestShareSchema,
)
from shared.contracts.commands.notification import (
    EndDeferral,
    EndDeferralSchema,
    ExtendDeferral,
    ExtendDeferralSchema,
)
from shared.contracts.commands.retention import (
    ErasureRequestSchema,
    LiftLegalHold,
    LiftLegalHoldSchema,
    PlaceLegalHold,
    PlaceLegalHoldSchema,
    RequestErasure,
)

__all__ = [
    "COMMAND_SCHEMAS",
    "LEDGER_QUERY",
    "ActivateCase",
    "ActivateCaseSchema",
    "AddParticipant",
    "AddParticipantSchema",
    "CloseCase",
    "CloseCaseSchema",
    "Command",
    "CommandSchema",
    "CorrectShare",
    "CorrectShareSchema",
    "EndDeferral",
    "EndDeferralSchema",
    "EndSafetyOverride",
    "EndSafetyOverrideSchema",
    "ErasureRequestSchema",
    "ExtendDeferral",
    "ExtendDeferralSchema",
    "GetCatalogue",
    "GetCatalogueSchema",
    "GetLedger",
    "GetLedgerSchema",
    "GiveConsent",
    "GiveConsentSchema",
    "LedgerEntrySchema",
    "LedgerSchema",
    "LiftLegalHold",
    "LiftLegalHoldSchema",
    "LodgeObjection",
    "LodgeObjectionSchema",
    "PlaceLegalHold",
    "PlaceLegalHoldSchema",
    "RecordSafetyOverride",
    "RecordSafetyOverrideSchema",
    "RegisterCase",
    "RegisterCaseSchema",
    "RemoveParticipant",
    "RemoveParticipantSchema",
    "RequestErasure",
    "RequestShare",
    "RequestShareSchema",
    "WithdrawConsent",
    "WithdrawConsentSchema",
    "WithdrawObjection",
    "WithdrawObjectionSchema",
    "dump_reply",
    "load_command",
]
