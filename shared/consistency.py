"""Read your own writes: consistency tokens.

Services learn of each other's writes through events, which take a moment to travel. A caller
that recorded a consent and then asks for a share must not be refused ``no_valid_consent`` only
because the consent had not reached data_sharing yet. So every command's answer carries a
**consistency token**: the positions, per stream and kind of event, of the events the command
recorded, together with those of the token the command itself was sent with (tokens
accumulate: pass the latest one along and it stands for everything you wrote before). A later
command may send it as ``consistency_token``; the service that takes it waits, at most
``WAIT_SECONDS``, until it has processed those positions of every stream it consumes events of
kinds the token names (its tracking records), and only then decides. If it cannot catch up in
time, the command is refused ``409 not_caught_up``, retryable, and changes nothing.

A token is ``v1.<payload>.<mac>``: base64url of compact JSON ``{"t": issued (unix seconds),
"w": [[source, kind, position(, stream)], ...]}`` (the stream only where it is not the source's
whole log) and an HMAC-SHA256 under a key derived from the
master key (keys of the master key in use and of the previous one verify). A token whose MAC
does not verify is refused ``400 invalid_consistency_token``; one older than ``LIFETIME``
``400 stale_consistency_token``: by then every service has long caught up, and a token kept
for days is a bug on the caller's side.

How it runs without a line in any entrypoint: ``ApplicationProvider`` opens a ``Recording`` for
each worker (greenlet-local); ``KetenApplication.save_tracked`` notes the positions it wrote in
it; ``load_command`` hands it the token the command carries (verified, waited for, merged);
``dump_reply`` puts the merged token in the answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from shared import metrics
from shared.errors import Conflict, InvalidRequest

#: How long a token is accepted after it was issued.
LIFETIME = 3600
#: How long a service waits for its consumers to reach a token's positions.
WAIT_SECONDS = 10.0
#: How often it looks in the meantime.
POLL_SECONDS = 0.01

VERSION = "v1"


@dataclass(frozen=True, order=True)
class Written:
    """An event of kind ``kind`` that service ``source`` recorded at ``position`` of ``stream``
    (the log its position counts in: the source's whole log, or a partition of it)."""

    source: str
    kind: str
    position: int
    stream: str = ""

    @property
    def log(self) -> str:
        return self.stream or self.source


def not_caught_up() -> Conflict:
    """The service has not yet processed what the caller wrote before: retry shortly. (A plain
    ``Conflict``: it crosses RPC to the gateway as one, 409.)"""
    return Conflict(
        "not_caught_up",
        "this service has not yet processed what you wrote before; retry in a moment",
        "consistency_token",
    )


class TokenKeys:
    """Mints and reads tokens under keys derived from the master key (and the previous one)."""

    def __init__(self, master_key: bytes, previous_master_key: bytes | None = None):
        self._keys = [_derive(master_key)] + ([_derive(previous_master_key)] if previous_master_key else [])

    def mint(self, written: Iterable[Written], now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        entries = [
            [w.source, w.kind, w.position, *([w.stream] if w.stream and w.stream != w.source else [])]
            for w in sorted(_latest(written))
        ]
        payload = _b64(json.dumps({"t": issued, "w": entries}, separators=(",", ":")).encode())
        return f"{VERSION}.{payload}.{_b64(self._mac(self._keys[0], payload))}"

    def read(self, token: str, now: float | None = None) -> tuple[Written, ...]:
        """What a token says, once its MAC verified and it is not stale; else 400."""
        parts = token.split(".") if isinstance(token, str) else []
        if len(parts) != 3 or parts[0] != VERSION:
            raise _invalid()
        _, payload, mac = parts
        try:
            given = _unb64(mac)
        except ValueError:
            raise _invalid() from None
        if not any(hmac.compare_digest(self._mac(key, payload), given) for key in self._keys):
            raise _invalid()
        try:
            document = json.loads(_unb64(payload))
            issued = int(document["t"])
            written = tuple(
                Written(str(entry[0]), str(entry[1]), int(entry[2]), str(entry[3]) if len(entry) > 3 else "")
                for entry in document["w"]
            )
        except (ValueError, KeyError, TypeError):
            raise _invalid() from None
        moment = time.time() if now is None else now
        if not issued - 60 <= moment <= issued + LIFETIME:
            raise InvalidRequest(
                "stale_consistency_token",
                "this consistency token is too old; send the one your latest command was answered with",
                "consistency_token",
            )
        return written

    @staticmethod
    def _mac(key: bytes, payload: str) -> bytes:
        return hmac.new(key, f"{VERSION}.{payload}".encode(), hashlib.sha256).digest()[:16]


@dataclass
class Recording:
    """One worker's writes and the token it was sent with: what its answer's token says."""

    keys: TokenKeys
    #: The position this service has processed of ``stream`` (its tracking records).
    position: Callable[[str], int]
    #: ``source.kind`` of every event this service consumes (``shared.topology``).
    consumes: frozenset[str]
    #: Workers that may wait at once (shared by the service's workers): the consumers that
    #: move the positions run in the same pool of workers, so waiting may never take all of it.
    waiting: threading.BoundedSemaphore | None = None
    #: The service, for the metric of how its waits ended.
    service: str = ""
    written: list[Written] = field(default_factory=list)

    def accept(self, token: str, wait_seconds: float = WAIT_SECONDS) -> None:
        """Verifies the token, waits until this service processed what it names of the
        streams it consumes, and keeps it to pass on in the answer's token."""
        written = self.keys.read(token)
        self.written.extend(written)
        needed: dict[str, int] = {}
        for w in written:
            if f"{w.source}.{w.kind}" in self.consumes:
                needed[w.log] = max(needed.get(w.log, 0), w.position)
        behind = {stream: position for stream, position in needed.items() if self.position(stream) < position}
        if not behind:
            metrics.consistency_waits.labels(self.service, "ready").inc()
            return
        if self.waiting is not None and not self.waiting.acquire(blocking=False):
            # Enough workers wait already: this one is answered at once.
            metrics.consistency_waits.labels(self.service, "not_caught_up").inc()
            raise not_caught_up()
        try:
            deadline = time.monotonic() + wait_seconds
            for stream, position in sorted(behind.items()):
                while self.position(stream) < position:
                    if time.monotonic() >= deadline:
                        metrics.consistency_waits.labels(self.service, "not_caught_up").inc()
                        raise not_caught_up()
                    time.sleep(POLL_SECONDS)  # green under eventlet: other workers run meanwhile
        finally:
            if self.waiting is not None:
                self.waiting.release()
        metrics.consistency_waits.labels(self.service, "waited").inc()

    def token(self) -> str:
        return self.keys.mint(self.written)


_current = threading.local()  # per greenlet under eventlet: one per nameko worker


def start(recording: Recording) -> None:
    _current.recording = recording


def stop() -> None:
    _current.recording = None


def current() -> Recording | None:
    recording: Recording | None = getattr(_current, "recording", None)
    return recording


def note(written: Iterable[Written]) -> None:
    """Called by every save: the positions the current worker wrote, if it records."""
    recording = current()
    if recording is not None:
        recording.written.extend(written)


def _latest(written: Iterable[Written]) -> set[Written]:
    """Per log and kind, only the latest position: a token stays small however long the
    chain of commands it stands for."""
    latest: dict[tuple[str, str, str], int] = {}
    for w in written:
        key = (w.source, w.kind, w.log)
        latest[key] = max(latest.get(key, 0), w.position)
    return {
        Written(source, kind, position, "" if log == source else log)
        for (source, kind, log), position in latest.items()
    }


def _derive(master_key: bytes) -> bytes:
    return hmac.new(master_key, b"keten consistency token v1", hashlib.sha256).digest()


def _invalid() -> InvalidRequest:
    return InvalidRequest(
        "invalid_consistency_token",
        "this is not a consistency token the platform issued; send the one your answer carried",
        "consistency_token",
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError("not base64url") from None
