"""The emulator's shared context: store, settings and the clock that scales Azure's durations."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from emulator.core.store import Store

DEFAULT_SUBSCRIPTION = "5f1c7e38-6b7a-4d1e-9a3c-0d1b2c3d4e5f"
DEFAULT_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


@dataclass
class Context:
    """Everything a service needs besides the request; one per running emulator."""

    store: Store
    state_dir: str
    subscription: str = DEFAULT_SUBSCRIPTION
    tenant: str = DEFAULT_TENANT
    time_factor: float = 0.05
    signing_key: str = ""
    address_pool: str = "127.100.0.0/16"  # loopback range public IPs (guest listen addresses) come from
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> float:
        return time.time()

    def duration(self, azure_seconds: float) -> float:
        """How long something that takes ``azure_seconds`` in Azure takes here."""
        return max(0.0, azure_seconds * self.current_time_factor())

    def current_time_factor(self) -> float:
        value = self.store.get_setting("time_factor")
        return float(value) if value is not None else self.time_factor
