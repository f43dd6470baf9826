"""Platform configuration, read from the environment (twelve-factor) with embedded defaults.

Every setting has the same name as an environment variable and as a key of nameko's config
dict, so a service reads ``{**os.environ, **container.config}`` and tests can override any of
them per container. Nothing here connects to anything.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

EMBEDDED_AMQP_URI = "keten-memory://localhost/"
MEMORY_DATABASE_URL = "sqlite://memory"


class ConfigurationError(Exception):
    """A setting is missing or malformed; the message names the setting, never its value."""


@dataclass(frozen=True)
class Settings:
    amqp_uri: str = EMBEDDED_AMQP_URI
    # None: SQLite files under var_dir (embedded). "sqlite://memory": in-memory (unit tests).
    # "postgresql://...": PostgreSQL, tables in database_schema.
    database_url: str | None = None
    database_schema: str = "public"
    var_dir: Path = Path("var")
    master_key: bytes = field(default=b"", repr=False)
    # During a master key rotation: the key the data keys were wrapped under until now.
    previous_master_key: bytes | None = field(default=None, repr=False)
    pseudonym_secret: bytes = field(default=b"", repr=False)
    rpc_timeout: float = 5.0
    gateway_address: str = "127.0.0.1:8000"
    relay_interval: float = 5.0  # a fallback: the relay wakes on every commit
    relay_batch_size: int = 500
    #: Seconds between signed heads of a verifiable log (while it grows), and between its self-checks.
    log_head_interval: float = 10.0
    log_verify_interval: float = 900.0
    consumer_prefetch: int = 100
    # At most how many delivered messages a consumer takes in one transaction and one ack (no
    # more than the prefetch); 1 takes them one at a time.
    consumer_batch: int = 100
    # Partitions of every service's event stream by case (shared.partitions); 1: one stream.
    event_partitions: int = 1
    # This replica's index among a consumer's replicas (which partitions it takes first); -1:
    # none (a fair share of the partitions no replica takes yet); and how many replicas there are.
    replica: int = -1
    replicas: int = 1
    # Seconds before a replica also stands by for the other replicas' partitions.
    standby_delay: float = 5.0
    # Seconds a signed agency command on the bus counts after its `keten-created` time (it may
    # wait in its queue through an outage); its message id is remembered that long, so a copy
    # sent again is refused (shared.commands, shared.seen).
    command_window: float = 300.0
    # Seconds between a consumer's looks at its upstreams' logs for events no message announced
    # (a lost tail of a quiet stream); 0 turns it off. Gaps before an arriving event are caught
    # up at once regardless.
    catch_up_interval: float = 300.0
    # Port of the small HTTP server (metrics, liveness, readiness) a service process opens in
    # production; 0 leaves it closed (the embedded platform serves /metrics on the gateway).
    ops_port: int = 0
    log_level: str = "INFO"
    log_format: str = "json"  # or "text", for people at a terminal
    # Seconds between the retention service's purge runs; 0 leaves the timer off (a CronJob
    # running ``keten purge`` can do the same job).
    purge_interval: float = 3600.0
    # The management API that ``keten agency`` creates agencies' broker users through (default:
    # port 15672 of the AMQP_URI host), and the address agencies connect to if it is not the
    # AMQP_URI's (e.g. a public TLS endpoint, ``amqps://bus.keten.example:5671``).
    rabbitmq_management_url: str | None = None
    agency_amqp_url: str | None = None
    # Notifications. No SMTP host: e-mail cannot be sent, and a notification whose subject
    # chose e-mail goes out as a letter (a PDF under letter_dir) and on the portal instead.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    smtp_from: str = "Keten <noreply@keten.invalid>"
    # None: <var_dir>/letters. Letters are handed to the printing service here.
    letter_dir: Path | None = None
    # The citizen's overview page, named in every notification.
    portal_url: str | None = None
    # Seconds between the notification service's delivery runs; 0 leaves its timer off.
    notify_interval: float = 1.0
    # Seconds between runs that lay out pending letters as PDFs (services.notification.channels);
    # 0 leaves the timer off, for letters rendered when collected (``keten letters render``).
    letter_render_interval: float = 5.0
    # Seconds a new notification waits for the other shares of its consultation (bundling).
    notify_bundle_seconds: float = 2.0
    # First retry after a failed delivery, in seconds; doubled per attempt, at most an hour.
    notify_retry_seconds: float = 30.0
    # Seconds after which a delivery attempt claimed and never finished (its process died in
    # between) is taken as interrupted and sent again, with the same Message-ID.
    notify_stale_seconds: float = 300.0
    # Due bundles a delivery run claims in one transaction, and whose outcome (sent, failed) it
    # records in one more; a crash between a send and that record sends the bundles of the group
    # that went out again after notify_stale_seconds (1: one bundle per transaction, as before).
    notify_batch: int = 20
    # The gateway's limits. A request body above max_request_bytes is refused (413) before it
    # is read; 1 MiB is several times the largest valid command (a share's content is at most
    # 20,000 characters).
    max_request_bytes: int = 1024 * 1024
    # How old a signed agency request may be (seconds since its ``created``), and how far the
    # clocks of agency and platform may differ either way (docs/agencies.md, section 6).
    signature_window: float = 60.0
    signature_clock_skew: float = 10.0
    # Citizen logins allowed per client address, and per citizen, in any login_window seconds.
    login_limit_per_address: int = 5
    login_limit_per_citizen: int = 5
    login_window: float = 60.0
    # How many reverse proxies stand in front of the gateway whose X-Forwarded-For and
    # X-Forwarded-Proto are believed (0: none; the headers are ignored).
    trusted_proxies: int = 0
    # Logboek Dataverwerkingen (shared.ldv): a JSON-lines file of records (the embedded default
    # is <var_dir>/ldv.jsonl; "off" writes none), an OTLP/HTTP endpoint of an LDV collector
    # (e.g. http://collector:4318/v1/traces), the address records name the register of
    # processing activities by, and the file `keten ldv register --write` keeps it in.
    ldv_file: Path | None = None
    ldv_otlp_endpoint: str | None = None
    ldv_register_url: str = "http://127.0.0.1:8000/api/ldv/processing-activities"
    ldv_register_file: Path | None = None

    @property
    def letters(self) -> Path:
        return self.letter_dir or self.var_dir / "letters"

    @property
    def portal(self) -> str:
        return self.portal_url or f"http://{self.gateway_address}/inzage"

    @property
    def embedded_broker(self) -> bool:
        return self.amqp_uri.startswith("keten-memory")

    @property
    def uses_postgres(self) -> bool:
        return (self.database_url or "").startswith(("postgres://", "postgresql://"))

    @classmethod
    def from_env(cls, env: Mapping[str, object] | None = None) -> Settings:
        """Builds settings from ``env`` (default: ``os.environ``)."""
        env = os.environ if env is None else env

        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(name)
            return default if value in (None, "") else str(value)

        database_url = get("DATABASE_URL")
        var_dir = Path(get("KETEN_VAR_DIR", "var") or "var")
        secrets_ = _secrets(get, database_url, var_dir)
        previous = get("KETEN_MASTER_KEY_PREVIOUS")
        log_level, log_format = log_settings(env)
        try:
            return cls(
                amqp_uri=get("AMQP_URI", EMBEDDED_AMQP_URI) or EMBEDDED_AMQP_URI,
                database_url=database_url,
                database_schema=get("DATABASE_SCHEMA", "public") or "public",
                var_dir=var_dir,
                master_key=secrets_["KETEN_MASTER_KEY"],
                previous_master_key=_decode("KETEN_MASTER_KEY_PREVIOUS", previous) if previous else None,
                pseudonym_secret=secrets_["KETEN_PSEUDONYM_SECRET"],
                rpc_timeout=float(get("KETEN_RPC_TIMEOUT", "5") or 5),
                gateway_address=get("GATEWAY_ADDRESS", "127.0.0.1:8000") or "",
                relay_interval=float(get("KETEN_RELAY_INTERVAL", "5") or 5),
                relay_batch_size=int(get("KETEN_RELAY_BATCH_SIZE", "500") or 500),
                log_head_interval=float(get("KETEN_LOG_HEAD_INTERVAL", "10") or 10),
                log_verify_interval=float(get("KETEN_LOG_VERIFY_INTERVAL", "900") or 900),
                consumer_prefetch=int(get("KETEN_CONSUMER_PREFETCH", "100") or 100),
                consumer_batch=int(get("KETEN_CONSUMER_BATCH", "100") or 1),
                event_partitions=int(get("KETEN_EVENT_PARTITIONS", "1") or 1),
                replica=int(get("KETEN_REPLICA", "-1") or -1),
                replicas=int(get("KETEN_REPLICAS", "1") or 1),
                standby_delay=float(get("KETEN_STANDBY_DELAY", "5") or 0),
                command_window=float(get("KETEN_COMMAND_WINDOW", "300") or 300),
                catch_up_interval=float(get("KETEN_CATCH_UP_INTERVAL", "300") or 0),
                ops_port=int(get("OPS_PORT", "0") or 0),
                log_level=log_level,
                log_format=log_format,
                purge_interval=float(get("KETEN_PURGE_INTERVAL", "3600") or 0),
                rabbitmq_management_url=get("RABBITMQ_MANAGEMENT_URL"),
                agency_amqp_url=get("KETEN_AGENCY_AMQP_URL"),
                smtp_host=get("KETEN_SMTP_HOST"),
                smtp_port=int(get("KETEN_SMTP_PORT", "25") or 25),
                smtp_user=get("KETEN_SMTP_USER"),
                smtp_password=get("KETEN_SMTP_PASSWORD"),
                smtp_starttls=(get("KETEN_SMTP_STARTTLS", "false") or "").lower() in ("1", "true", "yes"),
                smtp_from=get("KETEN_SMTP_FROM", "Keten <noreply@keten.invalid>") or "",
                letter_dir=Path(letters) if (letters := get("KETEN_LETTER_DIR")) else None,
                portal_url=get("KETEN_PORTAL_URL"),
                notify_interval=float(get("KETEN_NOTIFY_INTERVAL", "1") or 0),
                letter_render_interval=float(get("KETEN_LETTER_RENDER_INTERVAL", "5") or 0),
                notify_bundle_seconds=float(get("KETEN_NOTIFY_BUNDLE_SECONDS", "2") or 0),
                notify_retry_seconds=float(get("KETEN_NOTIFY_RETRY_SECONDS", "30") or 30),
                notify_stale_seconds=float(get("KETEN_NOTIFY_STALE_SECONDS", "300") or 300),
                notify_batch=int(get("KETEN_NOTIFY_BATCH", "20") or 20),
                max_request_bytes=int(get("KETEN_MAX_REQUEST_BYTES", "1048576") or 1048576),
                signature_window=float(get("KETEN_SIGNATURE_WINDOW", "60") or 60),
                signature_clock_skew=float(get("KETEN_SIGNATURE_CLOCK_SKEW", "10") or 10),
                login_limit_per_address=int(get("KETEN_LOGIN_LIMIT_PER_ADDRESS", "5") or 5),
                login_limit_per_citizen=int(get("KETEN_LOGIN_LIMIT_PER_CITIZEN", "5") or 5),
                login_window=float(get("KETEN_LOGIN_WINDOW", "60") or 60),
                trusted_proxies=int(get("KETEN_TRUSTED_PROXIES", "0") or 0),
                ldv_file=_ldv_file(get("KETEN_LDV_FILE"), database_url, var_dir),
                ldv_otlp_endpoint=get("KETEN_LDV_OTLP_ENDPOINT") or get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                ldv_register_url=get("KETEN_LDV_REGISTER_URL")
                or f"http://{get('GATEWAY_ADDRESS', '127.0.0.1:8000')}/api/ldv/processing-activities",
                ldv_register_file=_ldv_register_file(get("KETEN_LDV_REGISTER_FILE"), database_url, var_dir),
            )
        except ValueError as exc:
            raise ConfigurationError(f"a numeric KETEN_* setting is malformed: {exc}") from None


def _ldv_file(given: str | None, database_url: str | None, var_dir: Path) -> Path | None:
    """``KETEN_LDV_FILE``; unset: ``<var_dir>/ldv.jsonl`` for the embedded platform (no
    database server), none otherwise (an operator points the platform at a collector)."""
    if given:
        return None if given.lower() == "off" else Path(given)
    return var_dir / "ldv.jsonl" if database_url is None else None


def _ldv_register_file(given: str | None, database_url: str | None, var_dir: Path) -> Path | None:
    """``KETEN_LDV_REGISTER_FILE``; unset: ``<var_dir>/ldv-register.json`` (none for the unit
    tests' in-memory stores, which must not read a developer's ``var/``)."""
    if given:
        return Path(given)
    return None if database_url == MEMORY_DATABASE_URL else var_dir / "ldv-register.json"


def log_settings(env: Mapping[str, object] | None = None) -> tuple[str, str]:
    """``KETEN_LOG_LEVEL`` (default INFO) and ``KETEN_LOG_FORMAT`` (json, or text for people);
    read apart from the rest so that logging works before anything else is configured."""
    env = os.environ if env is None else env
    level = str(env.get("KETEN_LOG_LEVEL") or "INFO").upper()
    log_format = str(env.get("KETEN_LOG_FORMAT") or "json").lower()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigurationError("KETEN_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
    if log_format not in ("json", "text"):
        raise ConfigurationError("KETEN_LOG_FORMAT must be json or text")
    return level, log_format


SECRET_NAMES = ("KETEN_MASTER_KEY", "KETEN_PSEUDONYM_SECRET")


def _secrets(get, database_url: str | None, var_dir: Path) -> dict[str, bytes]:
    """Master key and pseudonym secret: from the environment, or for the embedded platform
    generated once into ``var/secrets.json`` so that ``make run`` needs no configuration."""
    values = {name: get(name) for name in SECRET_NAMES}
    missing = [name for name, value in values.items() if not value]
    if missing and database_url and not database_url.startswith("sqlite"):
        raise ConfigurationError(
            f"{', '.join(missing)} must be set when DATABASE_URL points at a server "
            "(32 random bytes, base64; see README 'Production')"
        )
    if missing and database_url == MEMORY_DATABASE_URL:
        # Unit tests: fresh, throw-away secrets.
        values.update({name: _encode(secrets.token_bytes(32)) for name in missing})
    elif missing:
        values.update(_embedded_secrets(var_dir, missing))
    return {name: _decode(name, value) for name, value in values.items()}


def _embedded_secrets(var_dir: Path, names: list[str]) -> dict[str, str]:
    path = var_dir / "secrets.json"
    stored: dict[str, str] = {}
    if path.exists():
        stored = json.loads(path.read_text())
    if any(name not in stored for name in names):
        var_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            stored.setdefault(name, _encode(secrets.token_bytes(32)))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(stored, f)
    return {name: stored[name] for name in names}


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def _decode(name: str, value: str | None) -> bytes:
    try:
        raw = base64.urlsafe_b64decode((value or "").encode())
    except ValueError:
        raise ConfigurationError(f"{name} is not valid base64") from None
    if len(raw) < 32:
        raise ConfigurationError(f"{name} must decode to at least 32 bytes")
    return raw


def generate_secret() -> str:
    """A fresh value for KETEN_MASTER_KEY or KETEN_PSEUDONYM_SECRET."""
    return _encode(secrets.token_bytes(32))
