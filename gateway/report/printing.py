"""The printed report laid out in parts and joined: WeasyPrint holds every page's layout until it
writes the file, and lays a long document out more slowly page by page; a year of fifty nodes is
some 250 pages (1 GB and 7 minutes in one piece). Each part is a run of whole sections (the
template marks where one may begin), laid out, written and dropped before the next; pypdf joins
the files. What crosses parts is done here: each part's pages are numbered on from the last one's,
the contents list is laid out last with the page each section begins on (known by then), and the
links between parts (contents, "see the queries") are added to the joined file.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from pypdf import PdfWriter

PART = "<!-- part -->"
"""Where the template lets a new part begin (render.html(printed=True))."""
PART_WEIGHT = 200
"""A part's size, in table rows (a plot counts as 15): small enough that its layout stays small
(a year of fifty nodes peaked 16 MB lower than at 400 rows), large enough that each part's own
cost (fonts, styles) stays small (the same CPU seconds at 200 and 400; at 100, 15 % more)."""
PLOT = "minewatch-plot:"
"""The URL scheme of the printed page's plots, served from memory while it is laid out."""
PLACEHOLDER = 888
"""The page number the contents list shows before the pages are counted: three digits, as wide as
the real ones, so the list takes the same pages both times."""


class _OtherParts(logging.Filter):
    """WeasyPrint's "No anchor #x" for a link to another part: this module links those itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No anchor")


@dataclass(frozen=True, slots=True)
class Pages:
    """Where each section begins (its anchor: page number from 1) and how many pages there are."""

    numbers: dict[str, int]
    total: int


@dataclass(frozen=True, slots=True)
class _Laid:
    path: Path
    pages: int
    anchors: dict[str, tuple[int, float, float]]  # name: page in the part, x, y (CSS px)
    links: list[tuple[int, str, tuple[float, float, float, float]]]  # page, anchor, x, y, w, h


def write(
    page_of: Callable[[Pages | None, bool], str],
    out: Path,
    attachments: dict[str, str],
    images: Callable[[], dict[str, bytes]],
) -> None:
    """`page_of(pages, front_only)`: the printed HTML, its contents list numbered by `pages` (a
    placeholder when None), only up to the contents when `front_only`. Writes the joined PDF to
    `out` with `attachments` (file name: text); `images()` gives the PNGs of the page's PLOT URLs,
    asked once the page is rendered, before the first layout (the plots may be drawing till then)."""
    from pypdf import PdfWriter

    for name in ("weasyprint", "fontTools"):  # they log every layout step at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    if not any(isinstance(f, _OtherParts) for f in logging.getLogger("weasyprint").filters):
        logging.getLogger("weasyprint").addFilter(_OtherParts())

    head, front, parts = _split(page_of(None, False))
    fetch = _fetcher(images())
    with tempfile.TemporaryDirectory(prefix="minewatch-report-") as tmp:
        work = Path(tmp)
        placeheld = _lay(head, front, 1, work / "front.pdf", fetch)
        front_pages = placeheld.pages
        for _ in range(3):  # again only if the numbered contents took other pages than the placeholder
            laid, first = [], front_pages + 1
            for i, part in enumerate(parts):
                laid.append(_lay(head, part, first, work / f"part-{i}.pdf", fetch))
                first += laid[-1].pages
            numbers = {name: at[0] + 1 for name, at in placeheld.anchors.items()}
            start = front_pages
            for part_laid in laid:
                numbers.update({name: start + at[0] + 1 for name, at in part_laid.anchors.items()})
                start += part_laid.pages
            head_n, front_n, _ = _split(page_of(Pages(numbers, first - 1), True))
            front_laid = _lay(head_n, front_n, 1, work / "front.pdf", fetch)
            if front_laid.pages == front_pages:
                break
            front_pages = front_laid.pages
        writer = PdfWriter()
        everything = [front_laid, *laid]
        bases, base = [], 0
        for part_laid in everything:
            writer.append(str(part_laid.path))
            bases.append(base)
            base += part_laid.pages
        where = {
            name: (b + page, x, y)
            for b, part_laid in zip(bases, everything, strict=True)
            for name, (page, x, y) in part_laid.anchors.items()
        }
        for b, part_laid in zip(bases, everything, strict=True):
            for page, target, rect in part_laid.links:
                if target in where and target not in part_laid.anchors:
                    _link(writer, b + page, rect, where[target])
        for name, text in attachments.items():
            writer.add_attachment(name, text.encode("utf-8"))
        with out.open("wb") as f:
            writer.write(f)


def _fetcher(images: dict[str, bytes]) -> Any:
    """WeasyPrint's URL fetcher for the plots: a URLFetcher (WeasyPrint 68 and later) or a
    function returning a dict (before)."""

    def refuse(url: str) -> NoReturn:
        raise ValueError(f"the printed report fetches nothing but its plots, not {url}")

    try:
        from weasyprint.urls import URLFetcher, URLFetcherResponse
    except ImportError:

        def fetch(url: str) -> dict[str, object]:
            if url.startswith(PLOT):
                return {"string": images[url], "mime_type": "image/png"}
            refuse(url)

        return fetch

    class Plots(URLFetcher):  # type: ignore[misc]
        def fetch(self, url: str, headers: object = None) -> Any:
            if url.startswith(PLOT):
                return URLFetcherResponse(url, images[url], {"Content-Type": "image/png"})
            refuse(url)

    return Plots()


def _split(page: str) -> tuple[str, str, list[str]]:
    """The page's head (up to its body), its front (before the first part mark) and the rest in
    parts of about PART_WEIGHT rows each."""
    head, _, body = page.partition("<body>")
    body = body.rpartition("</body>")[0]
    front, *sections = body.split(PART)
    parts: list[str] = []
    weight = PART_WEIGHT
    for section in sections:
        w = section.count("<tr") + 15 * section.count("<img")
        if parts and weight + w <= PART_WEIGHT:
            parts[-1] += section
            weight += w
        else:
            parts.append(section)
            weight = w
    return head, front, parts


def _lay(
    head: str, body: str, first_page: int, path: Path, fetch: Callable[[str], dict[str, object]]
) -> _Laid:
    """Lay out one part, its pages numbered from `first_page`, and write it to `path`."""
    from weasyprint import HTML

    counter = f"<style>@page :first {{ counter-set: page {first_page}; }}</style></head>"
    page = f"{head.replace('</head>', counter, 1)}<body>{body}</body></html>"
    doc = HTML(string=page, url_fetcher=fetch).render()
    anchors: dict[str, tuple[int, float, float]] = {}
    for i, page in enumerate(doc.pages):
        for name, (x, y, *_) in page.anchors.items():
            anchors.setdefault(name, (i, x, y))  # the first, as WeasyPrint's own links take
    links = [
        (i, target, rect)
        for i, page in enumerate(doc.pages)
        for kind, target, rect, _ in page.links
        if kind == "internal"
    ]
    doc.write_pdf(path)
    return _Laid(path, len(doc.pages), anchors, links)


def _link(
    writer: PdfWriter, page: int, rect: tuple[float, float, float, float], target: tuple[int, float, float]
) -> None:
    """A link on `page` over `rect` (CSS px from the top left) to a point of another page."""
    from pypdf.annotations import Link
    from pypdf.generic import Fit

    pt = 0.75  # CSS px to PDF points
    height = float(writer.pages[page].mediabox.height)
    x, y, w, h = rect
    to_page, to_x, to_y = target
    link = Link(
        rect=(x * pt, height - (y + h) * pt, (x + w) * pt, height - y * pt),
        target_page_index=to_page,
        fit=Fit.xyz(left=to_x * pt, top=float(writer.pages[to_page].mediabox.height) - to_y * pt),
    )
    writer.add_annotation(page_number=page, annotation=link)
