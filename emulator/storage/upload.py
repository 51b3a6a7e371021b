"""The streamed upload endpoint ``PUT /_emulator/blobs/{account}/{container}/{name}``.

VHDs are gigabytes, so this one route bypasses the dispatcher (which buffers and decodes
bodies) and writes the request body to disk as it arrives. It is still recorded in the request log.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.storage import blobs

PATH = "/_emulator/blobs/{account}/{container}/{name:path}"
_FLUSH = 8 * 1024 * 1024  # write in 8 MiB pieces, off the event loop


def routes(ctx: Context) -> list[Route]:
    async def put_blob(request: Request) -> Response:
        started = time.perf_counter()
        account = request.path_params["account"]
        container = request.path_params["container"]
        name = request.path_params["name"]
        status, body = 201, None
        try:
            writer = await run_in_threadpool(blobs.Writer, ctx, account, container, name)
            buffer = bytearray()
            try:
                async for chunk in request.stream():
                    buffer += chunk
                    if len(buffer) >= _FLUSH:
                        await run_in_threadpool(writer.add, bytes(buffer))
                        buffer.clear()
                if buffer:
                    await run_in_threadpool(writer.add, bytes(buffer))
                body = await run_in_threadpool(writer.commit)
            except BaseException:
                await run_in_threadpool(writer.abort)
                raise
        except ArmError as exc:
            status, body = exc.status, exc.body()
        _log(ctx, request, status, started)
        return _json(status, body)

    return [Route(PATH, put_blob, methods=["PUT"])]


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json; charset=utf-8")


def _log(ctx: Context, request: Request, status: int, started: float) -> None:
    dispatcher = ctx.extras.get("dispatcher")
    if dispatcher is not None:
        dispatcher.log.record("PUT", request.url.path, "emulator/blobs/write", status,
                              (time.perf_counter() - started) * 1000.0, "")
