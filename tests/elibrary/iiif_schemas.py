"""Validation of the served IIIF JSON against ``tests/data/iiif/iiif3.schema.json`` (JSON
Schema 2020-12, checked with the ``jsonschema`` package): the Presentation 3.0, Image 3.0
info.json, Content Search 2.0 and Authorization Flow 2.0 rules Qor's documents use, written
from the specifications' text (see the schema's ``description``). Manifests and collections are
also loaded back into iiif-prezi3's models (catches wrong nested ``type``s)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from iiif_prezi3 import Collection, Manifest
from jsonschema import Draft202012Validator

SCHEMA = Path(__file__).resolve().parent.parent / "data" / "iiif" / "iiif3.schema.json"


@cache
def _validator(definition: str) -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text("utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator({**schema, "$ref": f"#/$defs/{definition}"})


def errors(doc: dict[str, Any], definition: str) -> list[str]:
    """The schema's complaints about ``doc`` as ``definition`` (empty when valid)."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _validator(definition).iter_errors(doc)]


def _check(doc: dict[str, Any], definition: str) -> None:
    found = errors(doc, definition)
    assert not found, found[:10]


def validate_presentation(doc: dict[str, Any]) -> None:
    kinds = {"Manifest": (Manifest, "manifest"), "Collection": (Collection, "collection")}
    assert doc.get("type") in kinds, doc.get("type")
    model, definition = kinds[doc["type"]]
    _check(doc, definition)
    model(**{k: v for k, v in doc.items() if k != "@context"})


def validate_search(doc: dict[str, Any]) -> None:
    _check(doc, "searchResponse")


def validate_info(doc: dict[str, Any]) -> None:
    _check(doc, "imageInfo")


def validate_probe(doc: dict[str, Any]) -> None:
    _check(doc, "probeResult")
