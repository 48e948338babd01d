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
