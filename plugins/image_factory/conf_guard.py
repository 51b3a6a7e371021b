"""Reject a golden-image DAG run's bad conf at trigger time, before Airflow creates the run.

Airflow validates each param against its JSON schema when a run is triggered, but accepts conf
keys no param declares, and cannot check rules that involve the image definition (the gallery's
region must stay among the targets). This ASGI middleware, installed in the API server by the
factory's plugin, applies the same checks the ``plan`` task applies and answers 400 naming the
field and the rule; no run is created. Requests without credentials pass through untouched, so
Airflow still answers them 401.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TRIGGER_PATH = re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")


def conf_problem(dag_id: str, body: bytes) -> str | None:
    """Why this trigger request's conf is refused, or None to let Airflow handle it."""
    from image_factory.dag_factory import DAG_PREFIX
    from image_factory.definitions import DefinitionError
    from image_factory.pipeline.build import include_dir, load_definition
    from image_factory.plan import PlanError, check_params

    if not dag_id.startswith(DAG_PREFIX):
        return None
    name = dag_id.removeprefix(DAG_PREFIX)
    if not (include_dir() / "images" / f"{name}.yaml").is_file():
        return None
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return None  # not JSON: Airflow's own validation answers
    conf = payload.get("conf") if isinstance(payload, dict) else None
    if conf is None:
        return None
    if not isinstance(conf, dict):
        return "conf: must be a JSON object of params"
    try:
        check_params(conf, load_definition(name))
    except PlanError as exc:
        return str(exc).replace("params", "conf", 1)
    except DefinitionError:
        return None  # a broken definition shows as its own failing DAG
    return None


class ConfGuard:
    """Pure ASGI middleware (it must read the body, then replay it to Airflow)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = TRIGGER_PATH.match(scope.get("path", "")) if scope.get("type") == "http" else None
        if match is None or scope.get("method") != "POST" or not _has_credentials(scope):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
        problem = conf_problem(match["dag_id"], body)
        if problem is not None:
            await _answer(send, 400, {"detail": problem})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _has_credentials(scope: Scope) -> bool:
    headers = dict(scope.get("headers") or [])
    return bool(headers.get(b"authorization") or b"_token" in headers.get(b"cookie", b""))


async def _answer(send: Send, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
