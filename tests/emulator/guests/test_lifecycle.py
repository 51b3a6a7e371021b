"""Runtime selection at startup and the QEMU-served Debian 12 catalogue entries."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from emulator.core.errors import ArmError
from emulator.guests import lifecycle as guests_lifecycle
from emulator.guests.qemu import catalogue
from emulator.guests.qemu import image as images
from emulator.guests.router import GuestRouter
from emulator.guests.simulated.runtime import SimulatedRuntime
from emulator.guests.simulated.runtime import lifecycle as simulated_lifecycle
from emulator.server import make_context
from emulator.services.compute import marketplace


def fake_image(cache: Path, name: str, version: str, built_at: str) -> None:
    entry = cache / name
    entry.mkdir(parents=True)
    meta = {"key": name, "recipe": images.recipe_digest("bookworm"), "version": version, "root_uuid": "u",
            "cmdline": "root=UUID=u", "manifest": {}, "size": 1, "built_at": built_at}
    (entry / images.META).write_text(json.dumps(meta))


def test_entries_serve_cached_versions_and_latest_is_newest(tmp_path: Path) -> None:
    fake_image(tmp_path, "a", "0.20260101.5", "2026-01-01T00:00:00+00:00")
    fake_image(tmp_path, "b", "0.20261120.7", "2026-11-20T00:00:00+00:00")
    raws = catalogue.entries(tmp_path)
    assert {r["sku"] for r in raws} == {"12", "12-gen2"}
    marketplace.register_provider(lambda: catalogue.entries(tmp_path))
    try:
        e, v = marketplace.resolve("Debian", "debian-12", "12-gen2", "latest")
        assert v.name == "0.20261120.7" and [x.name for x in e.versions] == ["0.20260101.5", "0.20261120.7"]
        disk = marketplace.base_disk(e, v)
        assert disk["kind"] == "file" and disk["path"] == str(tmp_path / "b" / "disk.qcow2")
        assert e.hyper_v_generation == "V2"
    finally:
        marketplace._PROVIDERS.clear()
        marketplace.reset_cache()


def test_no_cached_image_is_a_409_telling_how_to_build(tmp_path: Path) -> None:
    provider = lambda: catalogue.entries(tmp_path / "empty")  # noqa: E731
    marketplace.register_provider(provider)
    try:
        with pytest.raises(ArmError) as err:
            marketplace.resolve("Debian", "debian-12", "12", "latest")
        assert err.value.status == 409 and "python -m emulator.guests.qemu.image build" in str(err.value)
    finally:
        marketplace.unregister_provider(provider)
    _, v = marketplace.resolve("Debian", "debian-12", "12", "latest")  # simulated catalogue again
    assert v.disk is None


@pytest.mark.parametrize("mode", ["simulated", "qemu"])
def test_startup_selects_runtimes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv("LOCAL_AZURE_LINUX_RUNTIME", mode)
    monkeypatch.setenv("LOCAL_AZURE_IMAGE_CACHE", str(tmp_path / "cache"))
    ctx = make_context(tmp_path / "state")

    async def cycle() -> None:
        await simulated_lifecycle.startup(ctx)
        await guests_lifecycle.lifecycle.startup(ctx)
        rt = ctx.extras["guests"]
        if mode == "qemu":
            assert isinstance(rt, GuestRouter) and set(rt.runtimes) == {"simulated", "qemu"}
            assert isinstance(rt.simulated, SimulatedRuntime)
            assert marketplace.find("Debian", "debian-12", "12-gen2").unavailable  # type: ignore[union-attr]
        else:
            assert isinstance(rt, SimulatedRuntime)
            assert marketplace.find("Debian", "debian-12", "12-gen2").unavailable is None  # type: ignore[union-attr]
        await guests_lifecycle.lifecycle.shutdown(ctx)
        assert isinstance(ctx.extras["guests"], SimulatedRuntime)
        await simulated_lifecycle.shutdown(ctx)

    asyncio.run(cycle())
    assert marketplace.find("Debian", "debian-12", "12-gen2").unavailable is None  # type: ignore[union-attr]
