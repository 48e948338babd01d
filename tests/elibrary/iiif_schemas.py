"""Validation of served IIIF JSON (interim: the served document is loaded back into
iiif-prezi3's models, which catch wrong ``type``s of nested resources but NOT, as measured,
a plain-string label or a string width — see the JSON-schema check that replaces this)."""

from __future__ import annotations

from typing import Any

from iiif_prezi3 import Collection, Manifest

CONTEXT = "http://iiif.io/api/presentation/3/context.json"


def validate_presentation(doc: dict[str, Any]) -> None:
    """Raise (pydantic ``ValidationError``) unless ``doc`` is a valid Manifest/Collection."""
    assert doc.get("@context") == CONTEXT, doc.get("@context")
    body = {k: v for k, v in doc.items() if k != "@context"}
    kinds = {"Manifest": Manifest, "Collection": Collection}
    assert doc.get("type") in kinds, doc.get("type")
    kinds[doc["type"]](**body)


SEARCH_CONTEXT = "http://iiif.io/api/search/2/context.json"


def validate_search(doc: dict[str, Any]) -> None:
    """A Content Search 2.0 AnnotationPage of highlighting annotations on canvases."""
    from iiif_prezi3 import AnnotationPage

    assert doc.get("@context") == SEARCH_CONTEXT, doc.get("@context")
    assert doc["type"] == "AnnotationPage"
    AnnotationPage(**{k: v for k, v in doc.items() if k != "@context"})
    for item in doc["items"]:
        assert item["type"] == "Annotation" and item["motivation"] == "highlighting"
        canvas, sep, frag = item["target"].partition("#xywh=")
        assert sep and canvas.startswith("http") and "/canvas/" in canvas
        assert all(v.isdigit() for v in frag.split(",")) and len(frag.split(",")) == 4
