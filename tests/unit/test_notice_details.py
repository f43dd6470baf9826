"""Every notice carries its date, a reference number, the contact point's details and the
complaint route; times in Europe/Amsterdam; e-mails have a ``Date:`` header."""

# ruff: noqa: F811  (the fixture of test_notification is imported by name)
from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from tests.unit.test_notification import later, platform  # noqa: F401


def test_an_email_notice_has_a_date_a_reference_the_contact_details_and_the_complaint_route(
    platform, mailbox
):
    case_id = platform.register()
    platform.share(case_id)
    assert platform.notification.dispatch_due(later()) == 1
    [mail] = mailbox.messages
    sent = parsedate_to_datetime(mail["Date"])
    assert abs((datetime.now(sent.tzinfo) - sent).total_seconds()) < 120
    body = mail.get_content()
    reference = mail["Message-ID"].strip("<>").split("@")[0]
    assert f"Kenmerk: {reference}" in body
    assert f"Datum: {datetime.now(ZoneInfo('Europe/Amsterdam')).date().isoformat()}" in body
    assert "030 000 01 01" in body and "zorgenveiligheid@gemeente-utrecht.example" in body
    assert "De Nationale ombudsman" in body and "Autoriteit Persoonsgegevens" in body
    assert " UTC" not in body  # times as the citizen reads them
