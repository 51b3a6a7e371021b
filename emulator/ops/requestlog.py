"""Every request the emulator served: a bounded log and counts per operation."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any


class RequestLog:
    def __init__(self, keep: int = 5000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=keep)
        self._counts: Counter[str] = Counter()
        self._seq = 0

    def record(self, method: str, path: str, operation: str, status: int, millis: float, api_version: str) -> None:
        with self._lock:
            self._seq += 1
            self._counts[operation] += 1
            self._entries.append(
                {
                    "seq": self._seq,
                    "time": time.time(),
                    "method": method,
                    "path": path,
                    "operation": operation,
                    "status": status,
                    "ms": round(millis, 3),
                    "apiVersion": api_version,
                }
            )

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self._seq,
                "counts": dict(self._counts),
                "entries": [e for e in self._entries if e["seq"] > since],
            }

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._counts.clear()
            self._seq = 0
