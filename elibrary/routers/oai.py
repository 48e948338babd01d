"""The OAI-PMH endpoint (``/oai``): the copies' metadata for harvesters."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from elibrary import oai
from elibrary.context import Lib

router = APIRouter()


@router.api_route("/oai", methods=["GET", "POST"])
async def oai_endpoint(request: Request, lib: Lib) -> Response:
    if request.method == "POST":
        form = await request.form()
        pairs = [(k, str(v)) for k, v in form.multi_items()]
    else:
        pairs = list(request.query_params.multi_items())

    def answer() -> bytes:
        with lib.sessions() as session:
            return oai.respond(session, pairs, config=oai.OaiConfig.from_config(lib.config))

    body = await anyio.to_thread.run_sync(answer)
    return Response(body, media_type="text/xml; charset=utf-8")
