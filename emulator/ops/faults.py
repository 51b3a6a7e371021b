"""Fault injection set at runtime: error answers, latency and failed LROs for matching operations.

A rule matches an operation name (``Microsoft.Compute/virtualMachines/write``) or ``METHOD path``
by glob. It applies with a probability, or to the next N matching calls, then retires.
"""

from __future__ import annotations

import fnmatch
import random
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from emulator.core.errors import ArmError

KINDS = ("error", "latency", "lro_failure")


@dataclass
class FaultRule:
    match: str
    kind: str = "error"
    status: int = 500
    code: str = "InternalServerError"
    message: str = "Injected fault."
    retry_after: float | None = None
    latency_ms: float = 0.0
    probability: float = 1.0
    remaining: int | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    hits: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        if not isinstance(data, dict) or not isinstance(data.get("match"), str) or not data["match"]:
            raise ArmError("Fault rule field 'match' is required: an operation name or 'METHOD path' glob.", target="match")
        kind = data.get("kind", "error")
        if kind not in KINDS:
            raise ArmError(f"Fault rule field 'kind' must be one of {', '.join(KINDS)}.", target="kind")
        prob = float(data.get("probability", 1.0))
        if not 0.0 <= prob <= 1.0:
            raise ArmError("Fault rule field 'probability' must be between 0 and 1.", target="probability")
        remaining = data.get("count", data.get("remaining"))
        if remaining is not None and (not isinstance(remaining, int) or remaining < 1):
            raise ArmError("Fault rule field 'count' must be a positive integer.", target="count")
        status = int(data.get("status", 500))
        if not 400 <= status <= 599:
            raise ArmError("Fault rule field 'status' must be an HTTP error status (400-599).", target="status")
        return cls(
            match=data["match"],
            kind=kind,
            status=status,
            code=str(data.get("code", "InternalServerError")),
            message=str(data.get("message", "Injected fault.")),
            retry_after=float(data["retry_after"]) if data.get("retry_after") is not None else None,
            latency_ms=float(data.get("latency_ms", 0.0)),
            probability=prob,
            remaining=remaining,
        )


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._random = random.Random(seed)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules]

    def take(self, kind: str, operation: str, method: str, path: str) -> FaultRule | None:
        """The first rule of ``kind`` that fires for this call (consuming one of its uses)."""
        target = f"{method.upper()} {path}"
        with self._lock:
            for rule in self._rules:
                if rule.kind != kind:
                    continue
                if not (fnmatch.fnmatchcase(operation.lower(), rule.match.lower())
                        or fnmatch.fnmatchcase(target.lower(), rule.match.lower())):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.hits += 1
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self._rules.remove(rule)
                return rule
        return None

    def latency(self, operation: str, method: str, path: str) -> float:
        rule = self.take("latency", operation, method, path)
        return rule.latency_ms / 1000.0 if rule else 0.0

    def error(self, operation: str, method: str, path: str) -> ArmError | None:
        rule = self.take("error", operation, method, path)
        if rule is None:
            return None
        headers = {"Retry-After": _fmt(rule.retry_after)} if rule.retry_after is not None else {}
        return ArmError(rule.message, code=rule.code, status=rule.status, headers=headers)

    def lro_failure(self, operation: str, method: str, path: str) -> dict[str, str] | None:
        rule = self.take("lro_failure", operation, method, path)
        return {"code": rule.code, "message": rule.message} if rule else None


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
