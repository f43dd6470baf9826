"""Printable documents (a letter, the citizen's copy of their overview) as PDF, from plain text.

fpdf2 is pure Python: no system libraries. Its core font (Helvetica) covers Latin-1, which
Dutch and English need; anything outside it prints as ``?`` rather than failing a letter.
"""

from __future__ import annotations

from typing import Any

from fpdf import FPDF


def _latin1(text: str) -> str:
    return text.replace("\u2019", "'").replace("\u20ac", "EUR").encode("latin-1", "replace").decode("latin-1")


def text_pdf(title: str, body: str, address_block: list[str] | None = None) -> bytes:
    """An A4 PDF: an optional address block (for a window envelope), a title, the body text."""
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(title))
    pdf.set_margins(25, 20, 20)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    if address_block:
        pdf.set_y(50)
        for line in address_block:
            pdf.cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(15)
    pdf.set_font("Helvetica", style="B", size=13)
    _paragraphs(pdf, _latin1(title), 7)
    pdf.ln(4)
    pdf.set_font("Helvetica", size=11)
    _paragraphs(pdf, _latin1(body), 5.5)
    return bytes(pdf.output())


def _paragraphs(pdf: FPDF, text: str, height: float) -> None:
    """``text`` set flush left in lines of ``height`` that fit the page's width, a new page
    where one is full. fpdf2's ``multi_cell`` does the same (justified) but measures each
    character as it goes, which made a letter cost about 15 ms of CPU; here each word is
    measured once, from the core font's width table, and each line is one ``cell``."""
    font = pdf.current_font
    assert font is not None, "a font is set before any text"
    for line in _wrapped(text, font.cw, pdf.epw * 1000 / pdf.font_size):
        pdf.cell(0, height, line, new_x="LMARGIN", new_y="NEXT")


def _wrapped(text: str, widths: Any, room: float) -> list[str]:
    """The lines of ``text`` (its own line breaks kept, words kept whole unless one alone is
    wider than ``room``) for a font whose character widths (thousandths of its size) are
    ``widths``, on a line ``room`` thousandths of the font size wide."""

    def width(chars: str) -> float:
        return float(sum(widths.get(c, 0) for c in chars))

    space = width(" ")
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line: list[str] = []
        used = 0.0
        for word in paragraph.split(" "):
            needed = width(word)
            if line and used + space + needed > room:
                lines.append(" ".join(line))
                line, used = [], 0.0
            while needed > room:  # a word wider than the line: broken where it must be
                cut, taken = 1, width(word[0])
                while taken + widths.get(word[cut], 0) <= room:
                    taken += widths.get(word[cut], 0)
                    cut += 1
                lines.append(word[:cut])
                word = word[cut:]
                needed = width(word)
            used += (space if line else 0.0) + needed
            line.append(word)
        lines.append(" ".join(line))
    return lines
