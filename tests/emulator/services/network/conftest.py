"""Fixtures of the network tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.emulator.services.network.builders import Net


@pytest.fixture
def net(arm: Any, group: str, location: str) -> Net:
    return Net(arm, group, location)
