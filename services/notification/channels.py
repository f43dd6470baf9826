"""How a notice reaches a person: its text from templates, an e-mail over SMTP, a letter as PDF.

Adapters at the edge of the notification service. The text comes from Jinja2 templates per
language (``templates/notice.<lang>.txt.j2``): plain Dutch at B1 level, and English. Errors
carry a code and whether retrying can help, never an address or a name.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import smtplib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from shared.config import Settings
from shared.documents import text_pdf

if TYPE_CHECKING:  # the words' types only: ``keten letters render`` needs none of the service
    from services.notification.view import NoticeWords, RequestNoticeWords

TEMPLATES = Path(__file__).with_name("templates")

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """A delivery attempt failed; ``permanent`` when retrying the same channel cannot help."""

    def __init__(self, code: str, permanent: bool):
        super().__init__(code)
        self.code = code
        self.permanent = permanent


@dataclass(frozen=True)
class Notice:
    """One message to one addressee, listing every share it tells of."""

    message_id: str
    language: str
    subject: str
    body: str


class NoticeTemplates:
    """The notice's subject line and body, per language, from ``templates/``."""

    def __init__(self) -> None:
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            undefined=StrictUndefined,
            autoescape=False,  # noqa: S701 - plain text: an e-mail body and a letter, never HTML
            keep_trailing_newline=True,
        )

    def render(self, message_id: str, language: str, words: NoticeWords) -> Notice:
        language = "en" if language == "en" else "nl"
        context = {spec.name: getattr(words, spec.name) for spec in fields(words)}
        subject = self.env.get_template(f"subject.{language}.txt.j2").render(**context).strip()
        body = self.env.get_template(f"notice.{language}.txt.j2").render(**context)
        return Notice(message_id=message_id, language=language, subject=subject, body=body)

    def render_request(self, message_id: str, language: str, words: RequestNoticeWords) -> Notice:
        """A notice about a step of the citizen's request (``request.<lang>.txt.j2``)."""
        language = "en" if language == "en" else "nl"
        context = {spec.name: getattr(words, spec.name) for spec in fields(words)}
        subject = self.env.get_template(f"request_subject.{language}.txt.j2").render(**context).strip()
        body = self.env.get_template(f"request.{language}.txt.j2").render(**context)
        return Notice(message_id=message_id, language=language, subject=subject, body=body)


class EmailChannel:
    """Sends a notice over SMTP (``KETEN_SMTP_*``). The Message-ID derives from the shares and
    the addressee, so a notice sent again after a crash is recognisably the same message."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @property
    def available(self) -> bool:
        return bool(self.settings.smtp_host)

    def send(self, notice: Notice, to: str) -> None:
        settings = self.settings
        message = EmailMessage()
        message["Subject"] = notice.subject
        message["From"] = settings.smtp_from
        message["To"] = to
        message["Message-ID"] = f"<{notice.message_id}@keten.invalid>"
        message["Date"] = formatdate(localtime=False)
        message["Content-Language"] = notice.language
        message.set_content(notice.body)
        try:
            smtp = smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=20)
        except (OSError, smtplib.SMTPException):
            raise DeliveryFailed("smtp_unreachable", permanent=False) from None
        try:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryFailed("smtp_recipient_refused", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed("smtp_rejected", permanent=exc.smtp_code >= 500) from None
        except (OSError, smtplib.SMTPException):
            raise DeliveryFailed("smtp_unreachable", permanent=False) from None
        finally:
            _say_goodbye(smtp)


def _say_goodbye(smtp: smtplib.SMTP) -> None:
    """Ends the session. Once the server accepted the message it is sent: a goodbye that fails
    must not make it look failed (and be sent again)."""
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


class LetterChannel:
    """Letters as PDF files in ``KETEN_LETTER_DIR``, where the printing service collects them
    (embedded default: ``var/letters``), in two steps so that the delivery run does not lay out
    PDFs (about 15 ms of CPU each, in the process that also consumes the service's events):

    1. ``send`` (the delivery run) writes the letter's order, its text and address, to
       ``pending/<message id>.letter``: the letter is handed over.
    2. ``render_pending`` (a timer of its own, ``KETEN_LETTER_RENDER_INTERVAL``, or
       ``keten letters render`` when the printing service collects) lays out each order as a
       PDF and moves it to the folder.

    Exactly once: a file in ``pending/`` is either a letter's order or its PDF, and every step
    is one atomic rename (the order replaced by its PDF under the same name, then the PDF moved
    out), so a run that stops anywhere is finished by the next without a second letter. Replicas
    sharing the folder each take a pending file only under an exclusive lock of it (``flock``,
    released when its process dies), and only while it is still the one pending under its name.
    """

    def __init__(self, settings: Settings):
        self.folder = settings.letters
        self.pending = self.folder / "pending"

    def path_for(self, message_id: str) -> Path:
        return self.folder / f"{message_id}.pdf"

    def send(self, notice: Notice, name: str | None, postal_address: str) -> Path:
        address = [line for line in (name or "", *(p.strip() for p in postal_address.split(","))) if line]
        order = {"subject": notice.subject, "body": notice.body, "address": address}
        path = self.pending / f"{notice.message_id}.letter"
        try:
            self.pending.mkdir(parents=True, exist_ok=True)
            _write_whole(path, json.dumps(order).encode())
        except OSError:
            raise DeliveryFailed("letter_not_written", permanent=False) from None
        return path

    def render_pending(self) -> int:
        """Lays out every pending letter as a PDF and hands it to the printing service;
        returns how many it handed over."""
        handed = 0
        for path in sorted(self.pending.glob("*.letter")):
            try:
                with _taken(path) as pending:
                    if pending is None:
                        continue  # another replica is at it, or finished it meanwhile
                    content = pending.read()
                    if not content.startswith(b"%PDF"):
                        order = json.loads(content)
                        pdf = text_pdf(order["subject"], order["body"], address_block=order["address"])
                        _write_whole(path, pdf)  # the order becomes its PDF, under the same name
                    os.replace(path, self.path_for(path.stem))
                handed += 1
            except (OSError, ValueError, KeyError) as exc:
                # Left in place: the next run tries again (the name says nothing personal).
                log.warning("letter %s not rendered: %s", path.stem, type(exc).__name__)
            # Laying out is CPU work that never waits: between letters, the service's other
            # green threads (its event consumer) get their turn.
            time.sleep(0)
        return handed


@contextlib.contextmanager
def _taken(path: Path) -> Iterator[BinaryIO | None]:
    """The pending file at ``path``, opened under an exclusive lock while the block runs; ``None``
    when another process holds it, or it is no longer the file pending at ``path``."""
    try:
        pending = path.open("rb")
    except FileNotFoundError:
        yield None
        return
    with pending:
        try:
            fcntl.flock(pending, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        try:
            current = path.stat().st_ino
        except FileNotFoundError:
            current = None
        yield pending if current == os.fstat(pending.fileno()).st_ino else None


def _write_whole(path: Path, content: bytes) -> None:
    """``content`` at ``path``, whole or not at all (a temporary file renamed over it)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
