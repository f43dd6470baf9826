"""BSN handling at the boundary: validate, then replace by a keyed pseudonym at once.

The platform never stores or sends a BSN. A subject is known everywhere by
``HMAC-SHA256(platform secret, BSN)``: stable, so the citizen's overview finds all of their
records, and not reversible without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

BSN_WEIGHTS = (9, 8, 7, 6, 5, 4, 3, 2, -1)


class InvalidBsnError(ValueError):
    """Not a valid BSN; the message never repeats the input."""


def validate_bsn(bsn: str) -> str:
    """Returns the BSN if it has 9 digits and passes the eleven-test."""
    candidate = (bsn or "").strip()
    if len(candidate) != 9 or not candidate.isascii() or not candidate.isdigit():
        raise InvalidBsnError("a BSN has exactly 9 digits")
    if candidate == "000000000":
        raise InvalidBsnError("a BSN cannot be all zeros")
    total = sum(int(digit) * weight for digit, weight in zip(candidate, BSN_WEIGHTS, strict=True))
    if total % 11 != 0:
        raise InvalidBsnError("this number fails the BSN eleven-test")
    return candidate


def pseudonymise(bsn: str, secret: bytes) -> str:
    """The subject's pseudonym: 32 hex characters of an HMAC over the validated BSN."""
    digest = hmac.new(secret, validate_bsn(bsn).encode(), hashlib.sha256).hexdigest()
    return digest[:32]


def is_pseudonym(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


@dataclass(frozen=True)
class Pseudonymiser:
    """``pseudonymise`` under the platform's secret: what a service hands ``load_command`` so
    that a command's BSNs are replaced by pseudonyms as it is loaded."""

    secret: bytes = field(repr=False)

    def __call__(self, bsn: str) -> str:
        return pseudonymise(bsn, self.secret)
