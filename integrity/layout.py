"""The layout of a stored bag: where it lives in a store and where each kind of file lives in it.

The one owner of these names (docs/bag-profile.md describes them): the digitise flow writes by
them, audits and repairs find objects by them, the e-library reads by them.

    bags/<bag-id>/bagit.txt, bag-info.txt, manifest-*.txt, tagmanifest-*.txt
                 metadata/dc.xml, metadata/premis.xml        (in clear)
                 data/masters/NNNN_<scan file name>          (the scans as received)
                 data/access/<inventory number>.pdf          (PDF/A-2u)
                 data/text/<page label>.txt | .hocr | .alto.xml
                 data/web/<inventory number>.pdf             (access PDF/A-2u, JPEG pages)
                 data/web/pages/NNNN.jpg                     (page NNNN's reading image)
"""

from __future__ import annotations

BAG_PREFIX = "bags"
"""Every bag is stored as loose objects under ``bags/<bag-id>/`` in its store."""

MASTERS = "masters"
"""Payload folder of the scans as received (архивтік түпнұсқа / архивный мастер)."""
ACCESS = "access"
"""Payload folder of the access PDF/A."""
TEXT = "text"
"""Payload folder of each page's OCR text, hOCR and ALTO."""

MASTERS_DIR = f"data/{MASTERS}/"
ACCESS_DIR = f"data/{ACCESS}/"
TEXT_DIR = f"data/{TEXT}/"
WEB = "web"
"""Payload folder of the access derivatives (for the web): the access PDF and page images.
Older bags have none; readers then get the archival PDF and no IIIF images."""
WEB_DIR = f"data/{WEB}/"
WEB_PAGES_DIR = f"{WEB_DIR}pages/"

#: Suffixes of a page's OCR outputs in ``data/text/``: plain text, hOCR, ALTO 4.4.
TEXT_SUFFIXES = (".txt", ".hocr", ".alto.xml")


def bag_prefix(bag_id: str) -> str:
    """``bags/<bag-id>/``: the key prefix of every object of the bag."""
    return f"{BAG_PREFIX}/{bag_id}/"


def bag_location(store_uri: str, bag_id: str) -> str:
    """Where an operator finds the bag: ``<store URI>/bags/<bag-id>/``."""
    return f"{store_uri.rstrip('/')}/{bag_prefix(bag_id)}"


def page_text_paths(label_stem: str) -> tuple[str, ...]:
    """The bag paths of one page's text, hOCR and ALTO (``data/text/<stem>.txt``…)."""
    return tuple(f"{TEXT_DIR}{label_stem}{suffix}" for suffix in TEXT_SUFFIXES)


def web_pdf_path(inventory_component: str) -> str:
    """``data/web/<inventory number>.pdf``: the access PDF (same text layer, JPEG pages)."""
    return f"{WEB_DIR}{inventory_component}.pdf"


def web_page_path(page_number: int) -> str:
    """``data/web/pages/NNNN.jpg``: the reading image of page ``page_number`` (1-based, in
    the order of the PDF), the source of the IIIF Image API."""
    if page_number < 1:
        raise ValueError("page numbers start at 1")
    return f"{WEB_PAGES_DIR}{page_number:04d}.jpg"
