"""The SQLite store: resources survive reopening, parents are indexed, transactions roll back."""

from __future__ import annotations

import threading

import pytest

from emulator.core.store import Resource, Store

RG = "/subscriptions/s/resourceGroups/rg"
GAL = RG + "/providers/Microsoft.Compute/galleries/g"


def test_put_get_children_and_reopen(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    store.put(Resource(RG, "Microsoft.Resources/resourceGroups", {"name": "rg"}))
    store.put(Resource(GAL, "Microsoft.Compute/galleries", {"name": "g"}, {"secret": 1}))
    store.put(Resource(GAL + "/images/d", "Microsoft.Compute/galleries/images", {"name": "d"}))
    lock = GAL + "/providers/Microsoft.Authorization/locks/l"
    store.put(Resource(lock, "Microsoft.Authorization/locks", {"name": "l"}))
    assert [r.name for r in store.children(RG)] == ["g"]
    assert sorted(r.name for r in store.children(GAL)) == ["d", "l"]
    store.close()
    again = Store(str(tmp_path / "s.db"))
    assert again.get(GAL.upper().replace("SUBSCRIPTIONS", "subscriptions")) is not None
    assert again.get(GAL).internal == {"secret": 1}
    assert [r.name for r in again.in_group("RG")] == ["g", "d", "l"]


def test_transaction_rolls_back_on_error(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    with pytest.raises(RuntimeError), store.tx():
        store.put(Resource(RG, "Microsoft.Resources/resourceGroups", {}))
        raise RuntimeError("boom")
    assert store.get(RG) is None


def test_concurrent_writers_lose_nothing(tmp_path):
    store = Store(str(tmp_path / "s.db"))

    def write(n: int) -> None:
        for i in range(50):
            with store.tx():
                store.put(Resource(f"{RG}{n}-{i}", "Microsoft.Resources/resourceGroups", {"i": i}))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.all()) == 200
