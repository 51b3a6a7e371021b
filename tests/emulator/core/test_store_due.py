"""Store.due_operations skips its query while nothing can be due: it must still find every due operation."""

from __future__ import annotations

import pytest

from emulator.core.store import Store


def test_due_only_once_ready_and_earliest_first(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    assert store.due_operations(1000.0) == []
    store.put_operation("late", "InProgress", 200.0, {})
    store.put_operation("early", "InProgress", 150.0, {})
    store.put_operation("by-code", "InProgress", None, {})
    assert store.due_operations(149.9) == []
    assert store.due_operations(150.0) == ["early"]
    store.put_operation("early", "Succeeded", None, {})
    assert store.due_operations(199.0) == []
    assert store.due_operations(250.0) == ["late"]


def test_rescheduled_earlier_is_due_at_the_new_time(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    store.put_operation("op", "InProgress", 500.0, {})
    assert store.due_operations(100.0) == []
    store.put_operation("op", "InProgress", 120.0, {})
    assert store.due_operations(130.0) == ["op"]


def test_settled_inside_a_rolled_back_transaction_is_due_again(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    store.put_operation("op", "InProgress", 100.0, {})
    with pytest.raises(RuntimeError), store.tx():
        store.put_operation("op", "Succeeded", None, {})
        assert store.due_operations(200.0) == []
        raise RuntimeError("handler failed")
    assert store.due_operations(200.0) == ["op"]


def test_rolled_back_reset_and_reopen_keep_operations_due(tmp_path):
    store = Store(str(tmp_path / "s.db"))
    store.put_operation("op", "InProgress", 100.0, {})
    assert store.due_operations(50.0) == []
    with pytest.raises(RuntimeError), store.tx():
        store.reset()
        raise RuntimeError("abort")
    assert store.due_operations(200.0) == ["op"]
    store.close()
    assert Store(str(tmp_path / "s.db")).due_operations(200.0) == ["op"]
