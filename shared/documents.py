"""Printable documents (a letter, the citizen's copy of their overview) as PDF, from plain text.

fpdf2 is pure Python: no system libraries. Its core font (Helvetica) covers Latin-1, which
Dutch and English need; anything outside it prints as ``?`` rather than failing a letter.
"""

from __future__ import annotations

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
    pdf.multi_cell(0, 7, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", size=11)
    pdf.multi_cell(0, 5.5, _latin1(body), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
