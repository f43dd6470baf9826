"""Citizen sessions: a signed, expiring token that names the citizen's pseudonym.

The login itself is a stand-in for DigiD (see ``services.gateway.identity``); whatever proves
who the citizen is, the gateway keeps only the pseudonym in the session, never the BSN.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from shared.errors import NotAuthorised

SESSION_SECONDS = 15 * 60


class SessionSigner:
    def __init__(self, master_key: bytes, lifetime: int = SESSION_SECONDS):
        self.key = hashlib.sha256(b"keten-citizen-session" + master_key).digest()
        self.lifetime = lifetime

    def issue(self, pseudonym: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.lifetime)
        body = base64.urlsafe_b64encode(json.dumps({"sub": pseudonym, "exp": expires}).encode()).decode()
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str | None, now: float | None = None) -> str:
        """The pseudonym in a valid, unexpired token; otherwise ``NotAuthorised``."""
        if not token or "." not in token:
            raise NotAuthorised("not_logged_in", "log in to see your overview")
        body, signature = token.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(body)):
            raise NotAuthorised("invalid_session", "this session is not valid; log in again")
        try:
            claims = json.loads(base64.urlsafe_b64decode(body.encode()))
        except ValueError:
            raise NotAuthorised("invalid_session", "this session is not valid; log in again") from None
        if claims.get("exp", 0) < (time.time() if now is None else now):
            raise NotAuthorised("session_expired", "your session has expired; log in again")
        return str(claims["sub"])

    def _sign(self, body: str) -> str:
        return hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()
