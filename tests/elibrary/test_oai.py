"""OAI-PMH 2.0: a real harvester (sickle) takes every record across resumption tokens; every
verb and error code answers as the protocol says."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sickle import Sickle

from tests.elibrary.conftest import Copies, LiveServer
from tests.elibrary.library import Library

NS = {"o": "http://www.openarchives.org/OAI/2.0/", "dc": "http://purl.org/dc/elements/1.1/"}


def test_sickle_harvests_every_visible_record_across_resumption_tokens(
    live_server: LiveServer, library: Library, copies: Copies
) -> None:
    from sqlalchemy import func, select

    from elibrary.models import LibraryCopy

    with library.sessions() as s:
        visible = s.scalar(select(func.count()).select_from(LibraryCopy)
                           .where(LibraryCopy.rights != "dark"))
    assert visible is not None and visible >= 3  # page size 2: at least two tokens
    sickle = Sickle(f"{live_server.url}/oai")
    records = list(sickle.ListRecords(metadataPrefix="oai_dc"))
    ids = [r.header.identifier for r in records]
    assert len(ids) == len(set(ids)) == visible
    bag_ids = {i.rsplit(":", 1)[1] for i in ids}
    assert {copies.open.bag_id, copies.readers.bag_id, copies.reading_room.bag_id} <= bag_ids
    assert copies.dark.bag_id not in bag_ids
    titles = {r.metadata["title"][0] for r in records}
    assert "Қазақ даласының тарихы" in titles
    headers = list(sickle.ListIdentifiers(metadataPrefix="oai_dc"))
    assert {h.identifier for h in headers} == set(ids)
    identify = sickle.Identify()
    assert identify.protocolVersion == "2.0"
    one = sickle.GetRecord(identifier=ids[0], metadataPrefix="oai_dc")
    assert one.header.identifier == ids[0]


def _error(client: TestClient, **params: str) -> str | None:
    root = etree.fromstring(client.get("/oai", params=params).content)
    err = root.find("o:error", NS)
    return None if err is None else err.get("code")


@pytest.mark.parametrize(("params", "code"), [
    ({}, "badVerb"),
    ({"verb": "Harvest"}, "badVerb"),
    ({"verb": "Identify", "extra": "1"}, "badArgument"),
    ({"verb": "ListRecords"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "marc21"}, "cannotDisseminateFormat"),
    ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "x"}, "noSetHierarchy"),
    ({"verb": "ListSets"}, "noSetHierarchy"),
    ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2999-01-01"},
     "noRecordsMatch"),
    ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "yesterday"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2020-01-01",
      "until": "2020-01-01T00:00:00Z"}, "badArgument"),
    ({"verb": "ListRecords", "resumptionToken": "forged.0000"}, "badResumptionToken"),
    ({"verb": "ListRecords", "resumptionToken": "x", "metadataPrefix": "oai_dc"},
     "badArgument"),
    ({"verb": "GetRecord", "identifier": "oai:localhost:nope", "metadataPrefix": "oai_dc"},
     "idDoesNotExist"),
    ({"verb": "GetRecord", "identifier": "oai:elsewhere:x", "metadataPrefix": "oai_dc"},
     "idDoesNotExist"),
    ({"verb": "ListMetadataFormats", "identifier": "oai:localhost:nope"}, "idDoesNotExist"),
])
def test_error_codes(live_server: LiveServer, params: dict[str, str], code: str) -> None:
    with TestClient(live_server.app, base_url="https://testserver") as client:
        assert _error(client, **params) == code


def test_dark_record_is_as_if_it_did_not_exist(live_server: LiveServer, copies: Copies) -> None:
    with TestClient(live_server.app, base_url="https://testserver") as client:
        assert _error(client, verb="GetRecord", identifier=f"oai:localhost:{copies.dark.bag_id}",
                      metadataPrefix="oai_dc") == "idDoesNotExist"


def test_repeated_argument_is_bad(live_server: LiveServer) -> None:
    with TestClient(live_server.app, base_url="https://testserver") as client:
        r = client.get("/oai?verb=Identify&verb=Identify")
        assert etree.fromstring(r.content).find("o:error", NS).get("code") == "badArgument"
