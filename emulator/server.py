"""The local Azure's HTTPS server: a Starlette app in front of the dispatcher, run by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulator.core import lro
from emulator.core.context import Context
from emulator.core.dispatch import Dispatcher
from emulator.core.store import Store
from emulator.services import arm_router, lifecycle_hooks, public_router
from emulator.storage import upload

log = logging.getLogger("emulator")
METHODS = ["GET", "PUT", "POST", "PATCH", "DELETE", "HEAD"]


def make_context(state_dir: str | os.PathLike[str], *, time_factor: float | None = None) -> Context:
    d = Path(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    store = Store(str(d / "state.db"))
    key = store.get_setting("signing_key")
    if key is None:
        key = secrets.token_urlsafe(32)
        store.set_setting("signing_key", key)
    ctx = Context(store=store, state_dir=str(d), signing_key=key,
                  address_pool=os.environ.get("LOCAL_AZURE_ADDRESS_POOL", "127.100.0.0/16"))
    if time_factor is not None:
        store.set_setting("time_factor", time_factor)
    return ctx


def make_app(ctx: Context) -> Starlette:
    dispatcher = Dispatcher(ctx, arm_router(), public_router())
    ctx.extras["dispatcher"] = dispatcher
    stop = threading.Event()

    async def handle(request: Request) -> Response:
        raw = await request.body()
        base = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
        query = {k.lower(): v for k, v in request.query_params.items()}
        headers = {k.lower(): v for k, v in request.headers.items()}
        wire = await run_in_threadpool(dispatcher, request.method, request.url.path, query, headers, raw, base)
        return Response(wire.body, status_code=wire.status, headers=wire.headers)

    def tick() -> None:
        """Settle timed operations even when nobody polls, so state moves on by itself."""
        while not stop.wait(0.1):
            try:
                lro.settle_due(ctx)
            except Exception:  # keep ticking: one bad operation must not stop the clock
                log.exception("settling operations failed")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ctx.extras["loop"] = asyncio.get_running_loop()
        for hook in lifecycle_hooks():
            await hook.startup(ctx)
        ticker = threading.Thread(target=tick, name="lro-ticker", daemon=True)
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join(timeout=2)
            for hook in reversed(lifecycle_hooks()):
                await hook.shutdown(ctx)

    return Starlette(routes=[*upload.routes(ctx), Route("/{path:path}", handle, methods=METHODS)], lifespan=lifespan)


def write_endpoint_file(ctx: Context, url: str, ca: Path) -> Path:
    """``endpoint.json`` tells clients (hook, tour, tests) where the local Azure is and what to trust."""
    path = Path(ctx.state_dir) / "endpoint.json"
    path.write_text(
        json.dumps(
            {
                "endpoint": url,
                "ca_bundle": str(ca),
                "subscription_id": ctx.subscription,
                "tenant_id": ctx.tenant,
                "pid": os.getpid(),
            },
            indent=2,
        )
    )
    return path
