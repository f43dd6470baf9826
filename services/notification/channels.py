"""How a notice reaches a person: its text from templates, an e-mail over SMTP, a letter as PDF.

Adapters at the edge of the notification service. The text comes from Jinja2 templates per
language (``templates/notice.<lang>.txt.j2``): plain Dutch at B1 level, and English. Errors
carry a code and whether retrying can help, never an address or a name.
"""

from __future__ import annotations

import os
import smtplib
import tempfile
from dataclasses import dataclass, fields
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.notification.view import NoticeWords, RequestNoticeWords
from shared.config import Settings
from shared.documents import text_pdf

TEMPLATES = Path(__file__).with_name("templates")


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
    """Writes the letter as a PDF into ``KETEN_LETTER_DIR``, where the printing service
    collects it (embedded default: ``var/letters``). Written whole or not at all."""

    def __init__(self, settings: Settings):
        self.folder = settings.letters

    def path_for(self, message_id: str) -> Path:
        return self.folder / f"{message_id}.pdf"

    def send(self, notice: Notice, name: str | None, postal_address: str) -> Path:
        address = [name or "", *(part.strip() for part in postal_address.split(","))]
        pdf = text_pdf(notice.subject, notice.body, address_block=[line for line in address if line])
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.folder, suffix=".part")
            with os.fdopen(fd, "wb") as out:
                out.write(pdf)
            os.replace(temporary, self.path_for(notice.message_id))
        except OSError:
            raise DeliveryFailed("letter_not_written", permanent=False) from None
        return self.path_for(notice.message_id)
