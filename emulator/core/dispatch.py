"""One request through the emulator: log, authenticate, throttle, inject faults, route, answer.

Handlers never see HTTP objects and never build error envelopes: they return ArmResponse or
raise ArmError, and this is the one place that turns either into what goes on the wire.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from emulator.core import auth, locks, lro
from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.core.routing import ArmRequest, ArmResponse, Router, normalise_path
from emulator.ops.faults import Faults
from emulator.ops.requestlog import RequestLog
from emulator.ops.throttling import Throttle


@dataclass
class Wire:
    status: int
    body: bytes
    headers: dict[str, str]


class Dispatcher:
    def __init__(self, ctx: Context, router: Router, public: Router) -> None:
        self.ctx = ctx
        self.router = router
        self.public = public
        self.log = RequestLog()
        self.faults = Faults()
        self.throttle = Throttle()

    def __call__(self, method: str, raw_path: str, query: dict[str, str], headers: dict[str, str], raw_body: bytes, base_url: str) -> Wire:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        out_headers = {"x-ms-request-id": request_id, "x-ms-correlation-request-id": headers.get("x-ms-client-request-id", request_id)}
        path = normalise_path(raw_path)
        named = [f"{method} {path}"]  # replaced by the route's operation name once routed
        status = 500
        try:
            response = self._serve(method, path, query, headers, raw_body, base_url, out_headers, named)
            status = response.status
            out_headers.update(response.headers)
            body = b"" if response.body is None else json.dumps(response.body).encode()
            if response.body is not None:
                out_headers["Content-Type"] = "application/json; charset=utf-8"
        except ArmError as exc:
            status = exc.status
            out_headers.update(exc.headers)
            out_headers["x-ms-failure-cause"] = "gateway" if exc.status in (401, 429) else "service"
            out_headers["Content-Type"] = "application/json; charset=utf-8"
            body = json.dumps(exc.body()).encode()
        if method == "HEAD":
            body = b""
        self.log.record(method, path, named[0], status, (time.perf_counter() - started) * 1000.0, query.get("api-version", ""))
        return Wire(status, body, out_headers)

    def _serve(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw_body: bytes, base_url: str, out_headers: dict[str, str], named: list[str]) -> ArmResponse:
        found = self.public.match(method, path)
        public = found is not None
        if found is None:
            found = self.router.match(method, path)
        if found is None:
            raise _unknown_path(path)
        route, params = found
        operation = named[0] = route.operation
        if not public:
            auth.verify(self.ctx, headers.get("authorization"))
            sub = params.get("subscription")
            if sub is not None and sub.lower() != self.ctx.subscription.lower():
                raise ArmError(f"The subscription '{sub}' could not be found.", code="SubscriptionNotFound", status=404)
            out_headers.update(self.throttle.charge(method, operation, _vm_key(path)))
            target = locks.target_of(method, path)
            if target is not None:
                locks.enforce(self.ctx, *target)
        delay = self.faults.latency(operation, method, path)
        if delay:
            time.sleep(delay)
        injected = self.faults.error(operation, method, path)
        if injected is not None:
            raise injected
        lro.settle_due(self.ctx)
        req = ArmRequest(
            ctx=self.ctx, method=method, path=path, query=query, headers=headers,
            body=_parse_body(raw_body, headers), base_url=base_url, params=params, operation=operation,
            lro_failure=self.faults.lro_failure(operation, method, path) if method != "GET" else None,
        )
        with self.ctx.store.tx():
            return route.handler(req)


def _parse_body(raw: bytes, headers: dict[str, str]) -> Any:
    if not raw:
        return None
    ctype = headers.get("content-type", "")
    if "json" in ctype or raw[:1] in (b"{", b"["):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ArmError(
                f"The request content was invalid and could not be deserialized: '{exc}'.",
                code="InvalidRequestContent",
            ) from exc
    return raw.decode(errors="replace")


def _vm_key(path: str) -> str | None:
    low = path.lower()
    marker = "/providers/microsoft.compute/virtualmachines/"
    if marker not in low:
        return None
    head, _, tail = low.partition(marker)
    return head + marker + tail.split("/", 1)[0]


def _unknown_path(path: str) -> ArmError:
    low = path.lower()
    if "/providers/" in low:
        ns_type = path.split("/providers/", 1)[1].split("/")
        ns = ns_type[0]
        rtype = ns_type[1] if len(ns_type) > 1 else ""
        return ArmError(
            f"The resource type '{rtype}' could not be found in the namespace '{ns}' for api version.",
            code="InvalidResourceType",
            status=404,
        )
    return ArmError(f"No HTTP resource was found that matches the request URI '{path}'.", code="InvalidRequestUri", status=404)
