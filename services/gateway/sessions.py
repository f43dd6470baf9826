"""Citizen sessions: a signed, expiring token that names the citizen's pseudonym and a session id.

The login itself is a stand-in for DigiD (see ``services.gateway.identity``); whatever proves
who the citizen is, the gateway keeps only the pseudonym in the session, never the BSN.

A token is checked by its signature and expiry here; whether its session was ended at logout
is kept server-side (``CitizenSessions`` in ``service.py``, on ``shared.seen``), so a token
copied before logout does not work after it. The page's forms carry a CSRF token derived from
the session id (``csrf_token``): a form posted from anywhere but the page itself lacks it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from shared.errors import NotAuthorised

SESSION_SECONDS = 15 * 60


@dataclass(frozen=True)
class Session:
    """What a valid token says: whose session, its id, and when it expires (Unix seconds)."""

    subject: str
    session_id: str
    expires: int


class SessionSigner:
    def __init__(self, master_key: bytes, lifetime: int = SESSION_SECONDS):
        self.key = hashlib.sha256(b"keten-citizen-session" + master_key).digest()
        self.csrf_key = hashlib.sha256(b"keten-citizen-csrf" + master_key).digest()
        self.lifetime = lifetime

    def issue(self, pseudonym: str, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.lifetime)
        claims = {"sub": pseudonym, "sid": secrets.token_urlsafe(16), "exp": expires}
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode()
        return f"{body}.{self._sign(body)}"

    def session(self, token: str | None, now: float | None = None) -> Session:
        """The session of a valid, unexpired token; otherwise ``NotAuthorised``."""
        if not token or "." not in token:
            raise NotAuthorised("not_logged_in", "log in to see your overview")
        body, signature = token.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(body)):
            raise NotAuthorised("invalid_session", "this session is not valid; log in again")
        try:
            claims = json.loads(base64.urlsafe_b64decode(body.encode()))
            session = Session(str(claims["sub"]), str(claims["sid"]), int(claims["exp"]))
        except (ValueError, KeyError, TypeError):
            raise NotAuthorised("invalid_session", "this session is not valid; log in again") from None
        if session.expires < (time.time() if now is None else now):
            raise NotAuthorised("session_expired", "your session has expired; log in again")
        return session

    def verify(self, token: str | None, now: float | None = None) -> str:
        """The pseudonym in a valid, unexpired token; otherwise ``NotAuthorised``."""
        return self.session(token, now).subject

    def csrf_token(self, session: Session) -> str:
        """The token the page's forms carry for this session."""
        return hmac.new(self.csrf_key, session.session_id.encode(), hashlib.sha256).hexdigest()

    def csrf_matches(self, session: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(str(given), self.csrf_token(session))

    def _sign(self, body: str) -> str:
        return hmac.new(self.key, body.encode(), hashlib.sha256).hexdigest()
