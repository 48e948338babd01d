"""IIIF Presentation API 3.0: a manifest per copy, a collection per fund (built with iiif-prezi3).

Манифест · манифест: what a IIIF viewer (Mirador) reads to show a copy — its labels and
metadata from the register (title, authors, year, inventory number · инвентарлық нөмір ·
инвентарный номер, fund · қор · фонд), its rights, and one canvas per page whose image is the
IIIF Image API service of the page's reading image (``/iiif/3/{bag_id}~{page}``, sized from
that image). The manifest is metadata, public like the record page and OAI-PMH; the pixels
and the text behind it are refused without the right to read (R6/R10), which viewers learn
from the IIIF Authorization Flow probe service announced on every image.

Funds: the register has no fund column; a copy's fund is its item's ``location`` (the
storage fund it is shelved in), :data:`MAIN_FUND` when none is recorded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from iiif_prezi3 import (
    Annotation,
    AnnotationBody,
    AnnotationPage,
    Canvas,
    Collection,
    KeyValueString,
    Manifest,
    ManifestRef,
    Resource,
    ServiceV3,
)

from elibrary.errors import InvalidParameter
from elibrary.library import CopyView
from elibrary.models import Rights

PRESENTATION_CONTEXT = "http://iiif.io/api/presentation/3/context.json"
SEARCH_CONTEXT = "http://iiif.io/api/search/2/context.json"
AUTH_CONTEXT = "http://iiif.io/api/auth/2/context.json"
MAIN_FUND = "main"
_FUND = re.compile(r"^[\w.-]{1,128}$")

#: The register records who may read a copy (R6), not its copyright status: every copy is
#: therefore "Copyright Not Evaluated" until a librarian evaluates it.
RIGHTS_STATEMENT = "http://rightsstatements.org/vocab/CNE/1.0/"

_LANG = {"kaz": "kk", "kk": "kk", "rus": "ru", "ru": "ru", "eng": "en", "en": "en"}

_FIELDS = {
    "title": {"kk": ["Атауы"], "ru": ["Заглавие"], "en": ["Title"]},
    "authors": {"kk": ["Авторлары"], "ru": ["Авторы"], "en": ["Authors"]},
    "year": {"kk": ["Жылы"], "ru": ["Год"], "en": ["Year"]},
    "publisher": {"kk": ["Баспа"], "ru": ["Издательство"], "en": ["Publisher"]},
    "inventory": {"kk": ["Инвентарлық нөмір"], "ru": ["Инвентарный номер"],
                  "en": ["Inventory number"]},
    "fund": {"kk": ["Қор"], "ru": ["Фонд"], "en": ["Fund"]},
    "access": {"kk": ["Қол жеткізу"], "ru": ["Доступ"], "en": ["Access"]},
}
_ACCESS = {
    Rights.OPEN: {"kk": ["Ашық: барлығына"], "ru": ["Открытый: для всех"],
                  "en": ["Open: anyone may read"]},
    Rights.READERS: {"kk": ["Тіркелген оқырмандарға"], "ru": ["Для зарегистрированных читателей"],
                     "en": ["Signed-in readers"]},
    Rights.READING_ROOM: {"kk": ["Тек оқу залында"], "ru": ["Только в читальном зале"],
                          "en": ["Only in the reading rooms"]},
}


def fund_of(view: CopyView) -> str:
    """The fund a copy belongs to (its item's location, else :data:`MAIN_FUND`)."""
    return view.fund or MAIN_FUND


def check_fund(fund: str) -> str:
    if not _FUND.fullmatch(fund):
        raise InvalidParameter("fund", "not a fund name")
    return fund


def _value(view: CopyView, text: str) -> dict[str, list[str]]:
    return {_LANG.get(view.language or "", "none"): [text]}


def _kv(label: dict[str, list[str]], value: dict[str, list[str]]) -> KeyValueString:
    return KeyValueString(label=label, value=value)


def manifest_url(base: str, bag_id: str) -> str:
    return f"{base}/iiif/presentation/{bag_id}/manifest.json"


def collection_url(base: str, fund: str) -> str:
    return f"{base}/iiif/presentation/collection/{quote(fund, safe='')}.json"


def may_download(rights: Rights) -> bool:
    """Whether the access PDF is offered as a download (``rendering``): not for copies that
    may be read only in the reading rooms."""
    return rights in (Rights.OPEN, Rights.READERS)


def probe_service(base: str, bag_id: str) -> dict[str, Any]:
    """The Authorization Flow 2.0 services of a restricted copy (probe → access → token)."""
    return {
        "id": f"{base}/iiif/auth/probe/{bag_id}",
        "type": "AuthProbeService2",
        "service": [{
            "id": f"{base}/iiif/auth/access",
            "type": "AuthAccessService2",
            "profile": "active",
            "label": {"kk": ["Оқырман билетімен кіріңіз"],
                      "ru": ["Войдите по читательскому билету"],
                      "en": ["Sign in with your reader ticket"]},
            "heading": {"kk": ["Бұл дана оқырмандарға арналған"],
                        "ru": ["Этот экземпляр для читателей"],
                        "en": ["This copy is for signed-in readers"]},
            "note": {"kk": ["Кіру беті жаңа терезеде ашылады."],
                     "ru": ["Страница входа откроется в новом окне."],
                     "en": ["The sign-in page opens in a new window."]},
            "confirmLabel": {"kk": ["Кіру"], "ru": ["Войти"], "en": ["Sign in"]},
            "service": [
                {"id": f"{base}/iiif/auth/token", "type": "AuthAccessTokenService2"},
            ],
        }],
    }


def build_manifest(view: CopyView, *, base: str,
                   sizes: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """The Presentation 3.0 manifest of ``view``; ``sizes[i]`` is the (width, height) of
    page ``i + 1``'s reading image."""
    bag = view.bag_id
    metadata = [_kv(_FIELDS["title"], _value(view, view.title))]
    if view.authors:
        metadata.append(_kv(_FIELDS["authors"], _value(view, "; ".join(view.authors))))
    if view.year:
        metadata.append(_kv(_FIELDS["year"], {"none": [str(view.year)]}))
    if view.publisher:
        metadata.append(_kv(_FIELDS["publisher"], _value(view, view.publisher)))
    metadata.append(_kv(_FIELDS["inventory"], {"none": [view.inventory_number]}))
    metadata.append(_kv(_FIELDS["fund"], {"none": [fund_of(view)]}))
    metadata.append(_kv(_FIELDS["access"], _ACCESS.get(view.rights, {"none": ["-"]})))
    restricted = view.rights is not Rights.OPEN
    canvases: list[Canvas] = []
    for page, (width, height) in enumerate(sizes, start=1):
        canvas_id = f"{base}/iiif/presentation/{bag}/canvas/{page}"
        service_id = f"{base}/iiif/3/{bag}~{page}"
        services: list[Any] = [ServiceV3(id=service_id, type="ImageService3", profile="level1")]
        body = AnnotationBody(id=f"{service_id}/full/max/0/default.jpg", type="Image",
                              format="image/jpeg", width=width, height=height,
                              service=services)
        anno = Annotation(id=f"{canvas_id}/annotation/1", type="Annotation",
                          motivation="painting", body=body, target=canvas_id)
        thumb_w = min(width, 200)
        thumb = Resource(id=f"{service_id}/full/{thumb_w},/0/default.jpg", type="Image",
                             format="image/jpeg", width=thumb_w,
                             height=max(1, round(height * thumb_w / width)))
        canvases.append(Canvas(
            id=canvas_id, type="Canvas", width=width, height=height,
            label={"kk": [f"{page}-бет"], "ru": [f"Стр. {page}"], "en": [f"Page {page}"]},
            items=[AnnotationPage(id=f"{canvas_id}/page/1", type="AnnotationPage",
                                  items=[anno])],
            thumbnail=[thumb],
        ))
    manifest = Manifest(
        id=manifest_url(base, bag), type="Manifest",
        label=_value(view, view.title),
        summary={"kk": [f"Цифрлық көшірме, {view.page_count} бет"],
                 "ru": [f"Цифровая копия, {view.page_count} стр."],
                 "en": [f"Digital copy, {view.page_count} pages"]},
        metadata=metadata,
        requiredStatement=_kv({"kk": ["Қол жеткізу"], "ru": ["Доступ"], "en": ["Access"]},
                              _ACCESS.get(view.rights, {"none": ["-"]})),
        rights=RIGHTS_STATEMENT,
        behavior=["paged"],
        homepage=[{"id": f"{base}/copies/{bag}", "type": "Text", "format": "text/html",
                   "label": _value(view, view.title)}],
        partOf=[{"id": collection_url(base, fund_of(view)), "type": "Collection"}],
        items=canvases,
    )
    if canvases:
        manifest.thumbnail = [canvases[0].thumbnail[0]]
    out: dict[str, Any] = manifest.jsonld_dict()
    out = _plain(out)
    out["service"] = [{"id": f"{base}/iiif/search/{bag}", "type": "SearchService2"}]
    if restricted:
        probe = probe_service(base, bag)
        out["service"].append(probe)
        for canvas in out["items"]:
            canvas["items"][0]["items"][0]["body"]["service"].append(probe)
    if may_download(view.rights):
        out["rendering"] = [{
            "id": f"{base}/copies/{bag}/file.pdf", "type": "Text", "format": "application/pdf",
            "label": {"kk": ["PDF жүктеу"], "ru": ["Скачать PDF"], "en": ["Download PDF"]},
        }]
    return out


def build_collection(fund: str, views: Sequence[CopyView], *, base: str) -> dict[str, Any]:
    """The Presentation 3.0 collection of one fund's copies (their manifests)."""
    items = [ManifestRef(id=manifest_url(base, v.bag_id), type="Manifest",
                         label=_value(v, v.title)) for v in views]
    collection = Collection(
        id=collection_url(base, fund), type="Collection",
        label={"kk": [f"Қор: {fund}"], "ru": [f"Фонд: {fund}"], "en": [f"Fund: {fund}"]},
        items=items,
    )
    out: dict[str, Any] = _plain(collection.jsonld_dict())
    return out


def _plain(value: Any) -> Any:
    """JSON-ready values (iiif-prezi3 leaves URLs as ``AnyUrl`` in ``jsonld_dict``)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
