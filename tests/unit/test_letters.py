"""A letter as the citizen and the printing service see it: the PDF read back (its objects, its
pages' content streams and the text on them, where it stands), not only its first bytes. And
``keten letters render`` as a process of its own, as the CronJob runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from fpdf import FPDF

from services.notification.channels import LetterChannel, Notice
from shared.config import Settings
from shared.documents import text_pdf

A4_HEIGHT_PT = 841.89
MM = 72 / 25.4  # points per millimetre
ADDRESS = ["Sanne de Vries", "Lindelaan 12", "3511 AB Utrecht"]
TITLE = "Gegevens over u zijn gedeeld door Gemeente Utrecht"
BODY = (
    "Datum: 2026-12-07\nKenmerk: 2b978b3f-2099-5357-b3b8-e4b46fc002ef\n\nBeste Sanne de Vries,\n\n"
    "Wij laten u weten dat gegevens over u zijn gedeeld. Dat doen wij altijd. Zo weet u wie wat "
    "weet, en waarom.\n\n- Wanneer: 2026-12-07 22:32\n- Wie deelde: Gemeente Utrecht\n"
    "- Met wie: Kredietbank Utrecht\n- Welke gegevens: schulden en betalingsachterstanden\n"
    "- Op grond van: wettelijke taak (Wet gemeentelijke schuldhulpverlening, art. 2 en 3)\n\n"
    "Niet tevreden? Klaag eerst bij ons: dien uw klacht in bij de klachtencoördinator.\n"
    "Met vriendelijke groet,\nGemeente Utrecht\n"
)


def test_a_letter_shows_its_address_in_the_window_its_title_and_every_word_of_its_text():
    pages = shown(text_pdf(TITLE, BODY, address_block=ADDRESS))

    assert len(pages) == 1
    [page] = pages
    # The address block where a window envelope shows it: 50 mm from the top, a line per 5 mm,
    # at the left margin (25 mm and the cell's 1 mm).
    for number, (x, y, text) in enumerate(page[:3]):
        assert text == ADDRESS[number]
        assert x / MM == pytest.approx(26.0, abs=0.01)
        assert (A4_HEIGHT_PT - y) / MM == pytest.approx(50 + 5 * number + 2.5 + 0.3 * 11 / MM, abs=0.01)
    assert page[3][2] == TITLE
    body = [text for _, _, text in page[4:]]
    assert words(body) == words([BODY]), "every word of the text, in its order"
    assert "Niet tevreden? Klaag eerst bij ons: dien uw klacht in bij de klachtencoördinator." in body
    assert "- Op grond van: wettelijke taak (Wet gemeentelijke schuldhulpverlening, art. 2 en 3)" in body


def test_a_long_letter_goes_on_over_pages_and_keeps_every_line_inside_the_margins():
    body = BODY * 4 + "Een-woord-dat-breder-is-dan-de-regel-" + "x" * 120 + " en verder. Prijs: 10 € \u2019\n"
    pages = shown(text_pdf(TITLE, body, address_block=ADDRESS))

    assert len(pages) == 2
    texts = [text for page in pages for _, _, text in page]
    assert texts[:4] == [*ADDRESS, TITLE]
    # Nothing lost where a page or a word too wide for the line is broken; what Helvetica cannot
    # print (the euro sign, curly quotes) spelled out.
    expected = body.replace("€", "EUR").replace("\u2019", "'")
    assert "".join(words(texts[4:])) == "".join(words([expected]))
    measure = FPDF(format="A4")
    measure.set_margins(25, 20, 20)
    measure.set_font("Helvetica", size=11)
    for page in pages:
        for x, y, text in page:
            assert y >= 20 * MM, "above the bottom margin"
            # A line starts 1 mm in (a cell's margin, as fpdf2 sets it) and the text is as wide
            # as the space between the margins: at most that 1 mm into the right margin.
            assert x / MM + measure.get_string_width(text) <= 210 - 20 + 1, text


def test_a_document_without_an_address_starts_with_its_title_at_the_top():
    [page] = shown(text_pdf("Uw overzicht", "Wat over u is gedeeld.\n"))
    assert [text for _, _, text in page] == ["Uw overzicht", "Wat over u is gedeeld."]
    assert (A4_HEIGHT_PT - page[0][1]) / MM < 30


def test_keten_letters_render_lays_out_a_handed_over_letter_in_a_process_without_the_platform(tmp_path):
    settings = Settings.from_env({"KETEN_LETTER_DIR": str(tmp_path)})
    notice = Notice(
        message_id="7f0c3c55-1a0e-5f43-9b5e-4a1e6c1d2b3a", language="nl", subject=TITLE, body=BODY
    )
    LetterChannel(settings).send(notice, "Sanne de Vries", "Lindelaan 12, 3511 AB Utrecht")
    code = (
        "import sys\n"
        "from keten.cli import main\n"
        "status = main(['letters', 'render'])\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
        "sys.exit(status)\n"
    )
    env = {"KETEN_LETTER_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}

    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"1 letter(s) ready for the printing service in {tmp_path}")
    assert not set(first.stdout.split()) & {"eventlet", "nameko", "marshmallow", "psycopg2"}
    [letter] = tmp_path.glob("*.pdf")
    assert letter.name == f"{notice.message_id}.pdf"
    [page] = shown(letter.read_bytes())
    assert [text for _, _, text in page[:4]] == [*ADDRESS, TITLE]

    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert again.returncode == 0 and again.stdout.startswith("0 letter(s)"), "laid out once"
    assert list(tmp_path.glob("*.pdf")) == [letter] and list((tmp_path / "pending").iterdir()) == []


def test_keten_letters_render_says_in_one_line_what_is_wrong_with_its_settings(tmp_path):
    result = subprocess.run(
        [str(Path(sys.executable).with_name("keten")), "letters", "render"],
        env={"KETEN_LETTER_DIR": str(tmp_path), "KETEN_LOG_LEVEL": "LOUD", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "keten letters: configuration error: KETEN_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"
    ]


# -- reading a PDF back ---------------------------------------------------------------------------
def words(texts: list[str]) -> list[str]:
    return " ".join(texts).split()


def shown(pdf: bytes) -> list[list[tuple[float, float, str]]]:
    """Per page, in order, each text the page shows with where its baseline starts (points from
    the bottom left): from the cross-reference table to the catalogue, its pages and their
    content streams, as a reader finds them."""
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    objects = _objects(pdf)
    root = _reference(_trailer(pdf), b"Root")
    pages = objects[_reference(objects[root], b"Pages")]
    kids = [int(n) for n in re.findall(rb"(\d+) 0 R", re.search(rb"/Kids \[(.*?)\]", pages, re.S)[1])]
    assert int(re.search(rb"/Count (\d+)", pages)[1]) == len(kids)
    return [_texts(_stream(objects[_reference(objects[kid], b"Contents")])) for kid in kids]


def _objects(pdf: bytes) -> dict[int, bytes]:
    """Every object by its number, found at the offset the cross-reference table gives for it."""
    start = int(re.search(rb"startxref\s+(\d+)\s+%%EOF", pdf)[1])
    assert pdf[start:].startswith(b"xref")
    header = re.match(rb"xref\s+0 (\d+)\s+", pdf[start:])
    entries = re.findall(rb"(\d{10}) (\d{5}) ([nf])", pdf[start + header.end() :])[: int(header[1])]
    objects = {}
    for number, (offset, _, kind) in enumerate(entries):
        if kind == b"n":
            at = int(offset)
            assert pdf[at:].startswith(b"%d 0 obj" % number), f"object {number} is where the table says"
            objects[number] = pdf[at : pdf.index(b"endobj", at)]
    return objects


def _trailer(pdf: bytes) -> bytes:
    return pdf[pdf.rindex(b"trailer") :]


def _reference(dictionary: bytes, key: bytes) -> int:
    return int(re.search(rb"/" + key + rb" (\d+) 0 R", dictionary)[1])


def _stream(obj: bytes) -> bytes:
    length = int(re.search(rb"/Length (\d+)", obj)[1])
    start = re.search(rb">>\s*stream\r?\n", obj).end()
    data = obj[start : start + length]
    assert obj[start + length :].lstrip().startswith(b"endstream")
    return zlib.decompress(data) if b"/FlateDecode" in obj[:start] else data


def _texts(content: bytes) -> list[tuple[float, float, str]]:
    found = []
    for x, y, literal in re.findall(rb"BT ([\d.]+) ([\d.]+) Td \(((?:\\.|[^\\)])*)\) Tj ET", content, re.S):
        found.append((float(x), float(y), _unescaped(literal).decode("latin-1")))
    return found


def _unescaped(literal: bytes) -> bytes:
    def one(match: re.Match[bytes]) -> bytes:
        escaped = match[1]
        if escaped[:1].isdigit():
            return bytes([int(escaped, 8)])
        return {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}.get(escaped, escaped)

    return re.sub(rb"\\([0-7]{1,3}|.)", one, literal, flags=re.S)


def test_reading_back_sees_what_was_written():
    """The reader above against a page written with fpdf2's own ``cell``: it must not pass a
    letter by seeing nothing."""
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.cell(0, 5, "Eén (regel) met \\ tekens", new_x="LMARGIN", new_y="NEXT")
    [[(_, _, text)]] = shown(bytes(pdf.output()))
    assert text == "Eén (regel) met \\ tekens"
    assert json.dumps(text)  # plain text, no PDF escapes left
