"""Printable documents (a letter, the citizen's copy of their overview) as PDF, from plain text.

fpdf2 is pure Python: no system libraries. Its core font (Helvetica) covers Latin-1, which
Dutch and English need; anything outside it prints as ``?`` rather than failing a letter.
"""

from __future__ import annotations

from itertools import repeat
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
        _lines(pdf, [_latin1(line) for line in address_block], 5)
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
    measured once, from the core font's width table."""
    font = pdf.current_font
    assert font is not None, "a font is set before any text"
    _lines(pdf, _wrapped(text, font.cw, pdf.epw * 1000 / pdf.font_size), height)


def _lines(pdf: FPDF, lines: list[str], height: float) -> None:
    """Each of ``lines`` on a line of its own, ``height`` high, from the current position down,
    a new page where one is full: where ``cell(0, height, line, new_x="LMARGIN",
    new_y="NEXT")`` puts it, to the point. A cell costs about 0.1 ms of CPU (fragments, text
    shaping, a copy of the graphics state), ``text`` a formatted string: the lines are already
    measured and set flush left, which is all a letter needs."""
    x = pdf.l_margin + pdf.c_margin
    baseline = 0.5 * height + 0.3 * pdf.font_size  # below the line's top, as a cell sets it
    for line in lines:
        if pdf.will_page_break(height):
            pdf.add_page()
        if line:
            pdf.text(x, pdf.y + baseline, line)
        pdf.set_y(pdf.y + height)


def _wrapped(text: str, widths: Any, room: float) -> list[str]:
    """The lines of ``text`` (its own line breaks kept, words kept whole unless one alone is
    wider than ``room``) for a font whose character widths (thousandths of its size) are
    ``widths``, on a line ``room`` thousandths of the font size wide."""

    measured: dict[str, float] = {}  # a letter uses many of its words more than once

    def width(chars: str) -> float:
        found = measured.get(chars)
        if found is None:
            found = measured[chars] = float(sum(map(widths.get, chars, repeat(0))))
        return found

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
