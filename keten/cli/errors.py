"""What a person reads when a ``keten`` command cannot do its work: one line, what is wrong and
what to do, never a traceback and never a password.

The commands check what they need before they touch anything (``keten migrate``: the broker,
then the database), and ``explain`` turns the failures of the libraries underneath (amqp,
kombu, psycopg2, eventsourcing, requests) into such a line when one surfaces later anyway.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from shared.config import Settings


class CommandFailed(Exception):
    """The command cannot go on; the message is the line the person reads."""


# -- the broker --------------------------------------------------------------------------------
def broker_target(amqp_uri: str) -> tuple[str, str, str]:
    """(host:port, vhost, user) of an AMQP URI; never its password."""
    parts = urlsplit(amqp_uri)
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return f"{parts.hostname or 'localhost'}:{parts.port or 5672}", vhost, unquote(parts.username or "guest")


def check_broker(settings: Settings) -> None:
    """Connects to ``AMQP_URI`` once (no retries) and hangs up; ``CommandFailed`` if it cannot."""
    if settings.embedded_broker:
        return
    from kombu import Connection

    connection = Connection(settings.amqp_uri, connect_timeout=10, heartbeat=0)
    try:
        connection.ensure_connection(max_retries=1)
    except Exception as error:
        raise CommandFailed(explain(error, settings) or broker_unreachable(settings, error)) from None
    finally:
        connection.release()


def broker_unreachable(settings: Settings, error: BaseException) -> str:
    where, _, _ = broker_target(settings.amqp_uri)
    return f"no RabbitMQ answers at {where} ({_reason(error)}): start it, or fix AMQP_URI"


def _broker_refusal(error: BaseException, settings: Settings) -> str | None:
    from amqp import exceptions as amqp_errors

    where, vhost, user = broker_target(settings.amqp_uri)
    text = str(error)
    if isinstance(error, amqp_errors.NotAllowed) and "not found" in text:
        return (
            f"the broker at {where} has no vhost '{vhost}': create it first"
            f" (rabbitmqctl add_vhost {vhost} && rabbitmqctl set_permissions -p {vhost} {user}"
            " '.*' '.*' '.*'), or fix AMQP_URI"
        )
    if isinstance(error, amqp_errors.NotAllowed):
        return (
            f"the broker at {where} does not let user '{user}' use vhost '{vhost}':"
            f" rabbitmqctl set_permissions -p {vhost} {user} '.*' '.*' '.*', or fix AMQP_URI"
        )
    if isinstance(error, amqp_errors.AccessRefused):
        return (
            f"the broker at {where} refused user '{user}' (wrong user or password in AMQP_URI):"
            " fix AMQP_URI, or create the user (rabbitmqctl add_user)"
        )
    return None


# -- the database ------------------------------------------------------------------------------
def database_target(database_url: str) -> tuple[str, str, str]:
    """(host:port, database, user) of a PostgreSQL URL; never its password."""
    parts = urlsplit(database_url)
    return (
        f"{parts.hostname or 'localhost'}:{parts.port or 5432}",
        unquote(parts.path[1:]) or unquote(parts.username or "postgres"),
        unquote(parts.username or "postgres"),
    )


def check_database(settings: Settings) -> None:
    """Connects to ``DATABASE_URL`` once and hangs up; ``CommandFailed`` if it cannot. SQLite
    (the embedded default) needs no check."""
    if not settings.uses_postgres or not settings.database_url:
        return
    import psycopg2

    try:
        psycopg2.connect(settings.database_url, connect_timeout=10, application_name="keten").close()
    except psycopg2.Error as error:
        raise CommandFailed(_database_refusal(str(error), settings)) from None


def _database_refusal(text: str, settings: Settings) -> str:
    where, database, user = database_target(settings.database_url or "")
    if f'database "{database}" does not exist' in text:
        return (
            f'PostgreSQL at {where}: database "{database}" does not exist; create it first'
            f" (createdb --owner {user} {database}), or fix DATABASE_URL"
        )
    refused = ('role "' in text and "does not exist" in text) or "no password supplied" in text
    if refused or "password authentication failed" in text:
        return (
            f"PostgreSQL at {where} refused user '{user}' (wrong user or password in DATABASE_URL):"
            f" fix DATABASE_URL, or create the user (createuser --pwprompt {user})"
        )
    first = " ".join(text.strip().splitlines()[:1]) or "no reason given"
    if "could not connect" in text or "Connection refused" in text or "timeout expired" in text:
        return f"no PostgreSQL answers at {where}: start it, or fix DATABASE_URL"
    return f"PostgreSQL at {where} refused the connection ({first}): check DATABASE_URL"


# -- anything that surfaces later --------------------------------------------------------------
def explain(error: BaseException, settings: Settings | None) -> str | None:
    """The line for a failure of a library underneath, or None for one we do not know."""
    from amqp import exceptions as amqp_errors
    from kombu import exceptions as kombu_errors

    if settings is not None and isinstance(error, amqp_errors.AMQPError | kombu_errors.OperationalError):
        refusal = _broker_refusal(error, settings)
        return refusal or broker_unreachable(settings, error)
    if settings is not None and settings.uses_postgres:
        import psycopg2
        from eventsourcing import persistence

        if isinstance(error, psycopg2.Error):
            return _database_refusal(str(error), settings)
        if isinstance(error, persistence.OperationalError):
            where, _, _ = database_target(settings.database_url or "")
            return f"the database at {where} failed ({_reason(error)}): is PostgreSQL up? check DATABASE_URL"
    return None


def _reason(error: BaseException) -> str:
    """A short reason without anything the person typed (errno names, exception types)."""
    text = str(error)
    for marker in ("ECONNREFUSED", "Connection refused", "timed out", "Name or service not known"):
        if marker in text:
            return marker
    return type(error).__name__
