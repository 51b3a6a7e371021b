"""Fixtures of the storage data-plane tests: the storage accounts' and the gallery's, shared."""

from __future__ import annotations

from tests.emulator.services.gallery.conftest import definition, gallery  # noqa: F401
from tests.emulator.services.storage.conftest import new_account, storage  # noqa: F401
