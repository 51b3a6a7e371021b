"""Lock enforcement rules on their own: which calls a lock blocks, and ARM's exact ScopeLocked answer."""

from __future__ import annotations

import pytest

from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.core.locks import LOCK_TYPE, enforce, target_of
from emulator.core.store import Resource, Store

SUB = "/subscriptions/s1"
RG = SUB + "/resourceGroups/rg1"
VM = RG + "/providers/Microsoft.Compute/virtualMachines/vm1"
GAL = RG + "/providers/Microsoft.Compute/galleries/gal1"


@pytest.fixture
def ctx(tmp_path) -> Context:
    return Context(store=Store(str(tmp_path / "state.db")), state_dir=str(tmp_path), subscription="s1")


def _lock(ctx: Context, scope: str, level: str, name: str = "l") -> None:
    lock_id = f"{scope}/providers/Microsoft.Authorization/locks/{name}"
    ctx.store.put(Resource(lock_id, LOCK_TYPE, {"id": lock_id, "name": name, "properties": {"level": level}}))


def _blocked(ctx: Context, method: str, path: str) -> ArmError | None:
    target = target_of(method, path)
    if target is None:
        return None
    try:
        enforce(ctx, *target)
    except ArmError as exc:
        return exc
    return None


def test_message_and_code_match_arm(ctx):
    _lock(ctx, RG, "CanNotDelete")
    err = _blocked(ctx, "DELETE", VM)
    assert err is not None and (err.status, err.code) == (409, "ScopeLocked")
    assert err.message == (
        f"The scope '{VM}' cannot perform delete operation because following scope(s) are locked: '{RG}'. "
        "Please remove the lock and try again."
    )


def test_can_not_delete_allows_writes_and_actions(ctx):
    _lock(ctx, RG, "CanNotDelete")
    assert _blocked(ctx, "PUT", VM) is None
    assert _blocked(ctx, "PATCH", RG) is None
    assert _blocked(ctx, "POST", VM + "/start") is None
    assert _blocked(ctx, "DELETE", RG) is not None
    assert _blocked(ctx, "DELETE", GAL + "/images/def1") is not None


def test_read_only_blocks_writes_posts_and_deletes_but_not_reads(ctx):
    _lock(ctx, VM, "ReadOnly")
    for method, path in (("PUT", VM), ("PATCH", VM), ("DELETE", VM), ("POST", VM + "/deallocate"),
                         ("PUT", VM + "/extensions/ext1")):
        err = _blocked(ctx, method, path)
        assert err is not None, (method, path)
        assert f"cannot perform {'delete' if method == 'DELETE' else 'write'} operation" in err.message
    assert _blocked(ctx, "GET", VM) is None and _blocked(ctx, "HEAD", VM) is None
    assert _blocked(ctx, "PUT", GAL) is None  # a sibling is not covered
    assert _blocked(ctx, "PATCH", RG) is None  # nor is the parent: a lock below does not block writing above


def test_lock_beneath_blocks_deleting_the_scope_above(ctx):
    _lock(ctx, GAL, "CanNotDelete")
    err = _blocked(ctx, "DELETE", RG.replace("resourceGroups", "resourcegroups"))
    assert err is not None and f"are locked: '{GAL}'" in err.message
    assert _blocked(ctx, "DELETE", VM) is None


def test_subscription_lock_covers_everything_and_names_every_scope(ctx):
    _lock(ctx, SUB, "ReadOnly", "a")
    _lock(ctx, RG, "CanNotDelete", "b")
    err = _blocked(ctx, "DELETE", VM)
    assert err is not None and f"'{SUB}','{RG}'" in err.message
    assert _blocked(ctx, "PUT", SUB + "/resourcegroups/new-rg") is not None


def test_lock_management_and_polling_are_exempt(ctx):
    _lock(ctx, RG, "ReadOnly")
    assert target_of("DELETE", RG + "/providers/Microsoft.Authorization/locks/l") is None
    assert target_of("PUT", RG + "/providers/Microsoft.Authorization/roleAssignments/x") is None
    assert target_of("GET", SUB + "/providers/Microsoft.Compute/locations/westeurope/operations/op") is None
    assert _blocked(ctx, "PUT", SUB + "/resourceGroups/rg10") is None  # a prefix is not a parent
