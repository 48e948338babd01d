"""OAI-PMH 2.0 data provider with ``oai_dc`` (http://www.openarchives.org/OAI/2.0/).

All six verbs (Identify, ListMetadataFormats, ListSets, ListIdentifiers, ListRecords,
GetRecord), every error code the protocol defines, selective harvesting by datestamp
(``YYYY-MM-DD`` or ``YYYY-MM-DDThh:mm:ssZ``) and resumption tokens. Records are the copies in
the e-library whose rights are not ``dark`` (their catalogue metadata is public; reading them is
governed by the rights). Identifiers are ``oai:<host>:<bag-id>``.

Resumption tokens are stateless: the harvest's arguments and the last copy id given out, signed
with the server's secret (a forged or altered token is ``badResumptionToken``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog_sync.models import DigitalCopy
from elibrary.errors import CopyNotAvailable, InvalidParameter
from elibrary.library import CopyView, harvestable_copies, visible_copy
from elibrary.models import LibraryCopy, Rights

if TYPE_CHECKING:
    from elibrary.config import ElibraryConfig

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC_NS = "http://purl.org/dc/elements/1.1/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
OAI_SCHEMA = "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"
OAI_DC_SCHEMA = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"

VERBS = {
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), set()),
    "ListIdentifiers": ({"metadataPrefix"}, {"from", "until", "set"}),
    "ListRecords": ({"metadataPrefix"}, {"from", "until", "set"}),
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
}
EXCLUSIVE = "resumptionToken"
TOKEN_DAYS = 1


class OaiError(Exception):
    """An OAI-PMH error answer (``code`` is one of the protocol's error codes)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class OaiConfig:
    """What the endpoint needs to know about the repository."""

    base_url: str
    repository_name: str
    admin_email: str
    secret_key: bytes
    page_size: int = 100

    @property
    def repository_id(self) -> str:
        return urlsplit(self.base_url).hostname or "localhost"

    @classmethod
    def from_config(cls, config: ElibraryConfig) -> OaiConfig:
        return cls(base_url=config.base_url + "/oai",
                   repository_name=f"{config.library_name} — e-library",
                   admin_email=config.admin_email, secret_key=config.secret_key,
                   page_size=config.oai_page_size)


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_date(value: str, *, end: bool) -> tuple[datetime, str]:
    """A datestamp argument and its granularity (``day`` or ``seconds``)."""
    try:
        if len(value) == 10:
            day = datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
            return (day + timedelta(days=1, microseconds=-1) if end else day), "day"
        if len(value) == 20 and value.endswith("Z"):
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC), "seconds"
    except ValueError:
        pass
    raise OaiError("badArgument", f"{value!r} is not a date of the form YYYY-MM-DD or "
                                  "YYYY-MM-DDThh:mm:ssZ")


def _sign(config: OaiConfig, payload: bytes) -> str:
    return hmac.new(config.secret_key, b"oai|" + payload, hashlib.sha256).hexdigest()[:32]


def make_token(config: OaiConfig, state: dict[str, object]) -> str:
    """A signed resumption token carrying ``state``."""
    payload = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _sign(config, payload)


def read_token(config: OaiConfig, token: str) -> dict[str, object]:
    """The state inside a token; ``badResumptionToken`` if forged, altered or expired."""
    try:
        data, _, mac = token.partition(".")
        payload = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
        if not hmac.compare_digest(mac, _sign(config, payload)):
            raise ValueError("signature")
        state = json.loads(payload)
        if not isinstance(state, dict) or float(state["exp"]) < datetime.now(UTC).timestamp():
            raise ValueError("expired")
        return state
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise OaiError("badResumptionToken", "the resumption token is invalid or has expired") \
            from e


def _el(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    node: etree._Element = etree.SubElement(parent, tag, attrib=dict(attrs))
    if text is not None:
        node.text = text
    return node


def _check_args(pairs: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    args: dict[str, str] = {}
    for key, value in pairs:
        if key in args:
            raise OaiError("badArgument", f"argument {key!r} is repeated")
        args[key] = value
    verb = args.pop("verb", None)
    if verb is None or verb not in VERBS:
        raise OaiError("badVerb", "missing or illegal verb" if verb is None
                       else f"{verb!r} is not an OAI-PMH verb")
    required, optional = VERBS[verb]
    if EXCLUSIVE in args and verb in ("ListIdentifiers", "ListRecords", "ListSets"):
        if len(args) != 1:
            raise OaiError("badArgument", "resumptionToken is an exclusive argument")
        return verb, args
    unknown = set(args) - required - optional
    if unknown:
        raise OaiError("badArgument", f"illegal argument(s): {', '.join(sorted(unknown))}")
    missing = required - set(args)
    if missing:
        raise OaiError("badArgument", f"missing argument(s): {', '.join(sorted(missing))}")
    return verb, args


def _identifier(config: OaiConfig, bag_id: str) -> str:
    return f"oai:{config.repository_id}:{bag_id}"


def _bag_of(config: OaiConfig, identifier: str) -> str:
    prefix = f"oai:{config.repository_id}:"
    if not identifier.startswith(prefix):
        raise OaiError("idDoesNotExist", f"{identifier!r} is not an identifier of this "
                                         "repository")
    return identifier[len(prefix):]


def _header(parent: etree._Element, config: OaiConfig, view: CopyView) -> None:
    header = _el(parent, "header")
    _el(header, "identifier", _identifier(config, view.bag_id))
    _el(header, "datestamp", _stamp(view.datestamp))


_RIGHTS_TEXT = {
    Rights.OPEN: "Open access",
    Rights.READERS: "Registered readers of the library",
    Rights.READING_ROOM: "In the library's reading rooms only",
}


def _record(parent: etree._Element, config: OaiConfig, view: CopyView) -> None:
    record = _el(parent, "record")
    _header(record, config, view)
    metadata = _el(record, "metadata")
    dc = etree.SubElement(
        metadata, f"{{{OAI_DC_NS}}}dc",
        nsmap={"oai_dc": OAI_DC_NS, "dc": DC_NS, "xsi": XSI_NS},
    )
    dc.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_DC_NS} {OAI_DC_SCHEMA}")

    def add(name: str, value: str | None) -> None:
        if value:
            etree.SubElement(dc, f"{{{DC_NS}}}{name}").text = value

    add("title", view.title)
    for author in view.authors:
        add("creator", author)
    add("publisher", view.publisher)
    add("date", str(view.year) if view.year else None)
    add("language", view.language)
    add("type", "Text")
    add("format", "application/pdf")
    add("identifier", view.inventory_number)
    site = config.base_url.removesuffix("/oai")
    add("identifier", f"{site}/copies/{view.bag_id}")
    # the IIIF Presentation 3.0 manifest, for viewers and aggregators (issue 16)
    add("relation", f"{site}/iiif/presentation/{view.bag_id}/manifest.json")
    add("rights", _RIGHTS_TEXT.get(view.rights))


def _earliest(session: Session) -> datetime:
    value = session.scalar(
        select(func.min(LibraryCopy.datestamp)).where(LibraryCopy.rights != Rights.DARK.value)
    )
    return value or datetime(2000, 1, 1, tzinfo=UTC)


def _list(session: Session, root: etree._Element, config: OaiConfig, verb: str,
          args: dict[str, str]) -> None:
    if EXCLUSIVE in args:
        state = read_token(config, args[EXCLUSIVE])
        if state.get("v") != verb:
            raise OaiError("badResumptionToken", "the token belongs to another verb")
    else:
        if args["metadataPrefix"] != "oai_dc":
            raise OaiError("cannotDisseminateFormat",
                           f"metadata format {args['metadataPrefix']!r} is not offered")
        if "set" in args:
            raise OaiError("noSetHierarchy", "this repository does not support sets")
        since = until = None
        grains = set()
        if "from" in args:
            since, g = _parse_date(args["from"], end=False)
            grains.add(g)
        if "until" in args:
            until, g = _parse_date(args["until"], end=True)
            grains.add(g)
        if len(grains) > 1:
            raise OaiError("badArgument", "from and until have different granularities")
        if since and until and since > until:
            raise OaiError("badArgument", "from is later than until")
        state = {"v": verb, "f": since.timestamp() if since else None,
                 "u": until.timestamp() if until else None, "a": 0, "c": 0}
    since_ts, until_ts = state.get("f"), state.get("u")
    since = datetime.fromtimestamp(float(since_ts), UTC) if since_ts is not None else None  # type: ignore[arg-type]
    until = datetime.fromtimestamp(float(until_ts), UTC) if until_ts is not None else None  # type: ignore[arg-type]
    after = int(state.get("a", 0))  # type: ignore[call-overload]
    cursor = int(state.get("c", 0))  # type: ignore[call-overload]
    views = harvestable_copies(session, since=since, until=until, after_copy_id=after,
                               limit=config.page_size + 1)
    if not views and cursor == 0:
        raise OaiError("noRecordsMatch", "no records match the arguments")
    more = len(views) > config.page_size
    views = views[: config.page_size]
    node = _el(root, verb)
    for view in views:
        if verb == "ListRecords":
            _record(node, config, view)
        else:
            _header(node, config, view)
    if more or cursor > 0:
        total = _count(session, since, until)
        if more:
            token = make_token(config, {
                "v": verb, "f": since_ts, "u": until_ts, "a": views[-1].copy_id,
                "c": cursor + len(views),
                "exp": (datetime.now(UTC) + timedelta(days=TOKEN_DAYS)).timestamp(),
            })
            _el(node, "resumptionToken", token, cursor=str(cursor), completeListSize=str(total))
        else:  # the last part of a list: an empty token says it is complete
            _el(node, "resumptionToken", None, cursor=str(cursor), completeListSize=str(total))


def _count(session: Session, since: datetime | None, until: datetime | None) -> int:
    stmt = (select(func.count()).select_from(LibraryCopy)
            .join(DigitalCopy, DigitalCopy.id == LibraryCopy.copy_id)
            .where(LibraryCopy.rights != Rights.DARK.value))
    if since is not None:
        stmt = stmt.where(LibraryCopy.datestamp >= since)
    if until is not None:
        stmt = stmt.where(LibraryCopy.datestamp <= until)
    return int(session.scalar(stmt) or 0)


def _view_for(session: Session, config: OaiConfig, identifier: str) -> CopyView:
    try:
        return visible_copy(session, _bag_of(config, identifier))
    except (CopyNotAvailable, InvalidParameter):
        raise OaiError("idDoesNotExist", f"no record {identifier!r}") from None


def respond(session: Session, pairs: Sequence[tuple[str, str]], *, config: OaiConfig,
            now: datetime | None = None) -> bytes:
    """The OAI-PMH response document for one request's arguments."""
    root = etree.Element("OAI-PMH", nsmap={None: OAI_NS, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{OAI_NS} {OAI_SCHEMA}")
    _el(root, "responseDate", _stamp(now or datetime.now(UTC)))
    request = _el(root, "request", config.base_url)
    try:
        verb, args = _check_args(pairs)
        request.set("verb", verb)
        for key, value in args.items():
            request.set(key, value)
        if verb == "Identify":
            node = _el(root, "Identify")
            _el(node, "repositoryName", config.repository_name)
            _el(node, "baseURL", config.base_url)
            _el(node, "protocolVersion", "2.0")
            _el(node, "adminEmail", config.admin_email)
            _el(node, "earliestDatestamp", _stamp(_earliest(session)))
            _el(node, "deletedRecord", "no")
            _el(node, "granularity", "YYYY-MM-DDThh:mm:ssZ")
        elif verb == "ListMetadataFormats":
            if "identifier" in args:
                _view_for(session, config, args["identifier"])
            node = _el(root, "ListMetadataFormats")
            fmt = _el(node, "metadataFormat")
            _el(fmt, "metadataPrefix", "oai_dc")
            _el(fmt, "schema", OAI_DC_SCHEMA)
            _el(fmt, "metadataNamespace", OAI_DC_NS)
        elif verb == "ListSets":
            if EXCLUSIVE in args:
                raise OaiError("badResumptionToken", "ListSets has no resumption")
            raise OaiError("noSetHierarchy", "this repository does not support sets")
        elif verb == "GetRecord":
            view = _view_for(session, config, args["identifier"])
            if args["metadataPrefix"] != "oai_dc":
                raise OaiError("cannotDisseminateFormat",
                               f"metadata format {args['metadataPrefix']!r} is not offered")
            _record(_el(root, "GetRecord"), config, view)
        else:
            _list(session, root, config, verb, args)
    except OaiError as e:
        # Per the protocol, the request element carries no attributes on badVerb/badArgument.
        if e.code in ("badVerb", "badArgument"):
            for key in list(request.attrib):
                del request.attrib[key]
        _el(root, "error", e.message, code=e.code)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
