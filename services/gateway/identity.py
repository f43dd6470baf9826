"""Who the citizen is: the identity provider the gateway asks, behind one small interface.

``StandInIdentity`` is a stand-in for DigiD, clearly marked as such on every page and in every
answer (``identity_provider: "stand-in"``): whoever types a valid BSN is logged in as that
citizen. It is for demonstrations and tests only. A real identity provider (DigiD through an
OIDC broker) replaces it by implementing ``CitizenIdentity``: it returns the BSN from the
provider's verified ID token (``sub`` or the broker's BSN claim) after the authorisation code
flow; the gateway then pseudonymises it and keeps only the pseudonym in the session, as now.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from shared.errors import InvalidRequest
from shared.pseudonym import InvalidBsnError, pseudonymise


class CitizenIdentity(Protocol):
    name: str

    def pseudonym(self, credentials: Mapping[str, object], secret: bytes) -> str:
        """The pseudonym of the citizen these credentials prove; ``InvalidRequest`` if none."""
        ...


class StandInIdentity:
    """NOT authentication: a BSN typed in is believed. Replace with OIDC (see module doc)."""

    name = "stand-in"

    def pseudonym(self, credentials: Mapping[str, object], secret: bytes) -> str:
        try:
            return pseudonymise(str(credentials.get("bsn", "")).strip(), secret)
        except InvalidBsnError as error:
            raise InvalidRequest("invalid_field", str(error), "bsn") from None
