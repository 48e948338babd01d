"""IIIF Image API 3.0 (level 1 and more) served from the encrypted bags, no image server.

Identifier: ``{bag_id}~{page}`` — the copy's bag id and the 1-based page number (the order
of the PDF), e.g. ``/iiif/3/INV-7.v1.0a1b2c3d4e5f~3/info.json``. The image of a page is its
reading image ``data/web/pages/NNNN.jpg`` (see :mod:`integrity.layout`), decrypted from the
store with range decryption into memory, never to disk. Copies bagged before access
derivatives existed have none: their identifiers answer 404 until ``qor copies derive``.

Routes (docs/elibrary.md):

* ``/iiif/3/{identifier}`` → 303 to ``…/info.json``;
* ``/iiif/3/{identifier}/info.json`` — ``ImageService3``, ``tiles`` of :data:`TILE` px with
  power-of-two scale factors, ``sizes`` of the pyramid levels;
* ``/iiif/3/{identifier}/{region}/{size}/{rotation}/{quality}.{format}`` — region ``full``,
  ``square``, ``x,y,w,h``, ``pct:x,y,w,h``; size ``max``, ``w,``, ``,h``, ``pct:n``, ``w,h``,
  ``!w,h`` (each with ``^`` to enlarge up to the image's size); rotation ``0/90/180/270``,
  ``!`` to mirror; quality ``default``, ``color``, ``gray``, ``bitonal``; format ``jpg``,
  ``png``.

Rights (R6/R10): exactly the PDF route's check — a visitor who may not read the copy gets the
same 401/403/404 error page and not one byte of an image. Memory is bounded by
:class:`ByteLRU` (``QOR_ELIBRARY_IIIF_CACHE_MB``): decoded page images and encoded answers
(tiles) share it, the least recently used go first.
"""

from __future__ import annotations

import io
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from PIL import Image, ImageOps

from elibrary.errors import AccessDenied, CopyNotAvailable, InvalidParameter, NotSignedIn
from elibrary.library import CopyView, check_bag_id, may_read, visible_copy
from elibrary.models import Rights
from integrity import layout

if TYPE_CHECKING:
    from elibrary.context import Elibrary

#: Tile edge in pixels (``tiles`` of info.json).
TILE = 512
CONTEXT = "http://iiif.io/api/image/3/context.json"
_IDENT = re.compile(r"^(?P<bag>.+)~(?P<page>[1-9][0-9]{0,5})$")
_NUM = r"\d+(?:\.\d+)?"
_REGION_PX = re.compile(r"^(\d{1,6}),(\d{1,6}),(\d{1,6}),(\d{1,6})$")
_REGION_PCT = re.compile(rf"^pct:({_NUM}),({_NUM}),({_NUM}),({_NUM})$")
_SIZE_W = re.compile(r"^(\d{1,6}),$")
_SIZE_H = re.compile(r"^,(\d{1,6})$")
_SIZE_WH = re.compile(r"^(!?)(\d{1,6}),(\d{1,6})$")
_SIZE_PCT = re.compile(rf"^pct:({_NUM})$")
_QUALITIES = ("default", "color", "gray", "bitonal")
_FORMATS = {"jpg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}
_JPEG_QUALITY = 80


class ByteLRU:
    """A thread-safe LRU bounded by the bytes of its values (the IIIF cache)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[object, tuple[Any, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._size

    def get(self, key: object) -> Any:
        with self._lock:
            hit = self._items.get(key)
            if hit is None:
                return None
            self._items.move_to_end(key)
            return hit[0]

    def put(self, key: object, value: Any, nbytes: int) -> None:
        if nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._items[key] = (value, nbytes)
            self._size += nbytes
            while self._size > self.max_bytes:
                _, (_, n) = self._items.popitem(last=False)
                self._size -= n


@dataclass(frozen=True)
class ImageRequest:
    """A parsed image request: region in image pixels, output size, rotation, quality, format."""

    region: tuple[int, int, int, int]
    size: tuple[int, int]
    rotation: int
    mirror: bool
    quality: str
    format: str


def parse_identifier(identifier: str) -> tuple[str, int]:
    """``{bag_id}~{page}`` → (bag id, page number). Any other identifier names no image of
    this server: :class:`CopyNotAvailable`, 404 — Image API 3.0 §7 answers an unknown
    identifier with 404 (the official validator's "Random identifier gives 404"), not 400."""
    m = _IDENT.match(identifier)
    if m is None:
        raise CopyNotAvailable(identifier)
    try:
        bag_id = check_bag_id(m.group("bag"))
    except InvalidParameter:
        raise CopyNotAvailable(identifier) from None
    return bag_id, int(m.group("page"))


def _region(text: str, width: int, height: int) -> tuple[int, int, int, int]:
    if text == "full":
        return 0, 0, width, height
    if text == "square":
        side = min(width, height)
        return (width - side) // 2, (height - side) // 2, side, side
    if m := _REGION_PX.match(text):
        x, y, w, h = (int(v) for v in m.groups())
    elif m := _REGION_PCT.match(text):
        px, py, pw, ph = (float(v) for v in m.groups())
        x, y = round(px * width / 100), round(py * height / 100)
        w, h = round(pw * width / 100), round(ph * height / 100)
    else:
        raise InvalidParameter("region", "not full, square, x,y,w,h or pct:x,y,w,h")
    if w <= 0 or h <= 0 or x >= width or y >= height:
        raise InvalidParameter("region", "empty or outside the image")
    return x, y, min(w, width - x), min(h, height - y)


def _size(text: str, rw: int, rh: int, *, max_w: int, max_h: int) -> tuple[int, int]:
    up = text.startswith("^")
    body = text[1:] if up else text
    if body == "max":
        scale = min(1.0, max_w / rw, max_h / rh) if not up else min(max_w / rw, max_h / rh)
        w, h = max(1, round(rw * scale)), max(1, round(rh * scale))
    elif m := _SIZE_W.match(body):
        w = int(m.group(1))
        h = max(1, round(rh * w / rw))
    elif m := _SIZE_H.match(body):
        h = int(m.group(1))
        w = max(1, round(rw * h / rh))
    elif m := _SIZE_PCT.match(body):
        pct = float(m.group(1))
        w, h = round(rw * pct / 100), round(rh * pct / 100)
    elif m := _SIZE_WH.match(body):
        confined, bw, bh = m.group(1) == "!", int(m.group(2)), int(m.group(3))
        if confined:
            scale = min(bw / rw, bh / rh)
            w, h = max(1, math.floor(rw * scale)), max(1, math.floor(rh * scale))
        else:
            w, h = bw, bh
    else:
        raise InvalidParameter("size", "not max, w,, ,h, pct:n, w,h or !w,h")
    if w <= 0 or h <= 0:
        raise InvalidParameter("size", "empty")
    if not up and (w > rw or h > rh):
        raise InvalidParameter("size", "larger than the region without ^")
    if w > max_w or h > max_h:
        raise InvalidParameter("size", "larger than maxWidth/maxHeight")
    return w, h


def parse_request(region: str, size: str, rotation: str, quality_format: str, *,
                  width: int, height: int) -> ImageRequest:
    """Parse the four path parameters of an image request against an image's dimensions."""
    rect = _region(region, width, height)
    out = _size(size, rect[2], rect[3], max_w=width, max_h=height)
    mirror = rotation.startswith("!")
    degrees = rotation[1:] if mirror else rotation
    if degrees not in ("0", "90", "180", "270"):
        raise InvalidParameter("rotation", "only 0, 90, 180 or 270 (optionally !)")
    quality, _, fmt = quality_format.partition(".")
    if quality not in _QUALITIES:
        raise InvalidParameter("quality", "not default, color, gray or bitonal")
    if fmt not in _FORMATS:
        raise InvalidParameter("format", "not jpg or png")
    return ImageRequest(region=rect, size=out, rotation=int(degrees), mirror=mirror,
                        quality=quality, format=fmt)


def render(image: Image.Image, req: ImageRequest) -> bytes:
    """The bytes answering ``req`` from the decoded page ``image``."""
    x, y, w, h = req.region
    im = image.crop((x, y, x + w, y + h)) if (x, y, w, h) != (0, 0, *image.size) else image
    if im.size != req.size:
        im = im.resize(req.size, Image.Resampling.LANCZOS if req.size[0] < w
                       else Image.Resampling.BICUBIC, reducing_gap=2.0)
    if req.mirror:
        im = ImageOps.mirror(im)
    if req.rotation:
        im = im.rotate(-req.rotation, expand=True)
    if req.quality == "gray":
        im = im.convert("L")
    elif req.quality == "bitonal":
        im = im.convert("L").point(lambda v: 255 if v >= 128 else 0).convert("1")
    buffer = io.BytesIO()
    kind = _FORMATS[req.format][0]
    if kind == "JPEG":
        if im.mode == "1":
            im = im.convert("L")
        im.save(buffer, "JPEG", quality=_JPEG_QUALITY)
    else:
        im.save(buffer, "PNG")
    return buffer.getvalue()


def scale_factors(width: int, height: int, tile: int = TILE) -> list[int]:
    """Powers of two until the whole page fits one tile."""
    factors = [1]
    while max(width, height) / factors[-1] > tile:
        factors.append(factors[-1] * 2)
    return factors


def info_json(service_id: str, width: int, height: int) -> dict[str, Any]:
    """The ``info.json`` of one page image (IIIF Image API 3.0)."""
    factors = scale_factors(width, height)
    sizes = [{"width": math.ceil(width / f), "height": math.ceil(height / f)}
             for f in reversed(factors)]
    return {
        "@context": CONTEXT,
        "id": service_id,
        "type": "ImageService3",
        "protocol": "http://iiif.io/api/image",
        "profile": "level1",
        "width": width,
        "height": height,
        "maxWidth": width,
        "maxHeight": height,
        "sizes": sizes,
        "tiles": [{"width": TILE, "height": TILE, "scaleFactors": factors}],
        "extraQualities": ["gray", "bitonal"],
        "extraFormats": ["png"],
        "extraFeatures": ["mirroring", "regionByPct", "rotationBy90s", "sizeByConfinedWh",
                          "sizeByPct", "sizeUpscaling"],
    }


def _refusal(view: CopyView, reader: object, in_room: bool) -> Exception | None:
    """The PDF route's rights check (R6/R10), same answers."""
    from elibrary.accounts import Principal

    principal = reader if isinstance(reader, Principal) else None
    if may_read(view.rights, principal, in_reading_room=in_room):
        return None
    if view.rights in (Rights.READERS, Rights.READING_ROOM) and principal is None:
        return NotSignedIn(f"copy {view.bag_id} is for signed-in readers")
    return AccessDenied(f"copy {view.bag_id} is only available in the reading rooms")


class PageImages:
    """Decrypted, decoded page images of copies, in a :class:`ByteLRU`."""

    def __init__(self, lib: Elibrary, cache: ByteLRU) -> None:
        self._lib = lib
        self.cache = cache
        self._loading: dict[tuple[str, int], threading.Lock] = {}
        self._lock = threading.Lock()

    def image(self, view: CopyView, page: int) -> Image.Image:
        key = ("page", view.bag_id, page)
        hit = self.cache.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        with self._lock:
            lock = self._loading.setdefault((view.bag_id, page), threading.Lock())
        with lock:  # one decode per page however many tiles ask for it at once
            hit = self.cache.get(key)
            if hit is not None:
                return hit  # type: ignore[no-any-return]
            opened = self._lib.files.open_file(view, layout.web_page_path(page))
            with Image.open(io.BytesIO(self._lib.files.read_all(opened))) as im:
                im.load()
                decoded: Image.Image = im.copy()
            self.cache.put(key, decoded, decoded.width * decoded.height * len(decoded.getbands()))
        with self._lock:
            self._loading.pop((view.bag_id, page), None)
        return decoded


#: How long the router trusts a copy's rights read from the register (a change of rights
#: reaches IIIF answers within this); only ``open`` copies are answered without a look-up.
VIEW_TTL_S = 2.0


def make_router(lib: Elibrary, *, visitor: Callable[[Request, Any], Any],
                reader_cookie: str) -> APIRouter:
    """The IIIF Image API routes on the application's parts (``visitor(request, session)``
    tells who asks: the web module's :meth:`Elibrary.visitor`; ``reader_cookie`` names the
    readers' session cookie)."""
    router = APIRouter(prefix="/iiif/3")
    images = PageImages(lib, ByteLRU(lib.config.iiif_cache_bytes))
    base = lib.config.base_url.rstrip("/")
    views: dict[str, tuple[float, CopyView]] = {}

    def authorised(request: Request, identifier: str) -> tuple[CopyView, int, Any]:
        bag_id, page = parse_identifier(identifier)
        with lib.sessions() as session:
            who = visitor(request, session)
            view = visible_copy(session, bag_id)  # dark or unknown: 404
        views[bag_id] = (time.monotonic() + VIEW_TTL_S, view)
        refused = _refusal(view, who.reader, who.in_reading_room)
        if refused is not None:
            raise refused
        if page > max(view.page_count, 0):
            raise CopyNotAvailable(identifier)
        return view, page, who

    def headers(view: CopyView) -> dict[str, str]:
        if view.rights is Rights.OPEN:
            return {"Cache-Control": "public, max-age=3600", "Access-Control-Allow-Origin": "*"}
        return {"Cache-Control": "private, no-store"}

    @router.get("/{identifier}")
    def base_uri(identifier: str) -> Response:
        parse_identifier(identifier)
        return RedirectResponse(f"{base}/iiif/3/{identifier}/info.json", status_code=303)

    @router.get("/{identifier}/info.json")
    def info(request: Request, identifier: str) -> Response:
        view, page, _who = authorised(request, identifier)
        im = images.image(view, page)
        body = info_json(f"{base}/iiif/3/{identifier}", im.width, im.height)
        if view.rights is not Rights.OPEN:  # IIIF Authorization Flow 2.0
            from elibrary.iiif_presentation import probe_service

            body["service"] = [probe_service(base, view.bag_id)]
        accept = request.headers.get("accept", "")
        media = (f'application/ld+json;profile="{CONTEXT}"' if "application/ld+json" in accept
                 else "application/json")
        return JSONResponse(body, media_type=media, headers=headers(view))

    @router.get("/{identifier}/{region}/{size}/{rotation}/{quality_format}")
    async def image(request: Request, identifier: str, region: str, size: str, rotation: str,
                    quality_format: str) -> Response:
        # Fast path, no thread and no register: an anonymous visitor asking again for a tile
        # of an ``open`` copy whose rights were read less than VIEW_TTL_S ago (anyone may read
        # it: R6). Everything else goes through the full check below.
        bag_id, page = parse_identifier(identifier)
        known = views.get(bag_id)
        if (known is not None and known[0] > time.monotonic()
                and known[1].rights is Rights.OPEN and reader_cookie not in request.cookies):
            data = images.cache.get(("out", bag_id, page, region, size, rotation,
                                     quality_format))
            if data is not None:
                lib.read_log.record(copy_id=known[1].copy_id, account_id=None,
                                    place="remote", nbytes=len(data))
                return Response(data, media_type=_FORMATS[quality_format.rpartition(".")[2]][1],
                                headers=headers(known[1]))
        return await anyio.to_thread.run_sync(
            image_checked, request, identifier, region, size, rotation, quality_format)

    def image_checked(request: Request, identifier: str, region: str, size: str,
                      rotation: str, quality_format: str) -> Response:
        view, page, who = authorised(request, identifier)
        key = ("out", view.bag_id, page, region, size, rotation, quality_format)
        data = images.cache.get(key)
        if data is None:
            im = images.image(view, page)
            req = parse_request(region, size, rotation, quality_format,
                                width=im.width, height=im.height)
            data = render(im, req)
            images.cache.put(key, data, len(data))
        fmt = quality_format.rpartition(".")[2]
        account = who.reader.account_id if who.reader else None
        lib.read_log.record(copy_id=view.copy_id, account_id=account, place=who.place,
                            nbytes=len(data))
        return Response(data, media_type=_FORMATS[fmt][1], headers=headers(view))

    return router
