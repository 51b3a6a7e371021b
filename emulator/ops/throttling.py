"""ARM throttling: token buckets with Azure's real limits, 429 + Retry-After when enforced.

Subscription buckets (per region of the ARM front door, one here): reads 250 refilled 25/s,
writes 200 refilled 10/s, deletes 200 refilled 10/s. Compute adds a per-VM write bucket of
12 refilled 4 per minute. The ``x-ms-ratelimit-remaining-*`` headers are always sent; 429s
only when enforcement is switched on (it is off by default so tests and tours are not slowed).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from emulator.core.errors import Throttled

LIMITS = {
    "reads": (250.0, 25.0),
    "writes": (200.0, 10.0),
    "deletes": (200.0, 10.0),
}
VM_WRITES = (12.0, 4.0 / 60.0)


@dataclass
class Bucket:
    capacity: float
    rate: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for_one(self) -> float:
        return max(0.0, (1.0 - self.tokens) / self.rate)


class Throttle:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.enforce = False
        self.scale = 1.0
        self._buckets: dict[str, Bucket] = {}

    def configure(self, enforce: bool, scale: float = 1.0) -> None:
        """``scale`` shrinks the bucket capacities (refill rates stay real) to reach 429 quickly in tests."""
        with self._lock:
            self.enforce = enforce
            self.scale = scale
            self._buckets.clear()

    def _bucket(self, key: str, capacity: float, rate: float, now: float) -> Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            cap = max(1.0, capacity * self.scale)
            bucket = self._buckets[key] = Bucket(cap, rate, cap, now)
        bucket.refill(now)
        return bucket

    def charge(self, method: str, operation: str, vm_key: str | None) -> dict[str, str]:
        """Take a token for this request; return the ratelimit headers or raise a 429."""
        kind = "reads" if method in ("GET", "HEAD") else "deletes" if method == "DELETE" else "writes"
        now = time.monotonic()
        with self._lock:
            bucket = self._bucket(kind, *LIMITS[kind], now)
            vm_bucket = None
            if vm_key and kind != "reads":
                vm_bucket = self._bucket("vm:" + vm_key, *VM_WRITES, now)
            if self.enforce:
                for b, name in ((bucket, kind), (vm_bucket, "vm")):
                    if b is not None and b.tokens < 1.0:
                        wait = math.ceil(b.wait_for_one())
                        raise Throttled(
                            f"Number of {'write' if name == 'vm' else name[:-1]} requests for subscription "
                            f"exceeded the limit. Please try again after '{wait}' seconds.",
                            code="OperationNotAllowed" if name == "vm" else "SubscriptionRequestsThrottled",
                            headers={"Retry-After": str(wait), **self._headers(kind, bucket, vm_bucket)},
                        )
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            if vm_bucket is not None:
                vm_bucket.tokens = max(0.0, vm_bucket.tokens - 1.0)
            return self._headers(kind, bucket, vm_bucket)

    def _headers(self, kind: str, bucket: Bucket, vm_bucket: Bucket | None) -> dict[str, str]:
        headers = {f"x-ms-ratelimit-remaining-subscription-{kind}": str(int(bucket.tokens))}
        if vm_bucket is not None:
            headers["x-ms-ratelimit-remaining-resource"] = (
                f"Microsoft.Compute/PutVM3Min;{int(vm_bucket.tokens)},Microsoft.Compute/PutVM30Min;{int(vm_bucket.tokens)}"
            )
        return headers
