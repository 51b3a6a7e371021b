"""Microsoft.Storage storage accounts, no HTTP: names, keys, properties; their blob data lives in Azurite.

An account is an ARM resource here (state, keys) and an account in Azurite (its data): every change
to the accounts or their keys rewrites Azurite's account registry from the store, so the two never
disagree. Account names are global, as in Azure: one name, one account, whatever the group.
Deleting an account (or its group) deletes its containers in Azurite before the account leaves
Azurite's registry.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from typing import Any

from emulator.core import lro
from emulator.core.context import Context
from emulator.core.errors import ArmError, InvalidParameter, resource_not_found
from emulator.core.ids import resource_id
from emulator.core.lifecycle import on_remove
from emulator.core.regions import canonical
from emulator.core.store import Resource
from emulator.services.resources.models import get_group
from emulator.services.storage.sas import invalid
from emulator.storage.azurite import client, process

log = logging.getLogger("emulator.storage")

NS = "Microsoft.Storage"
ACCOUNT = f"{NS}/storageAccounts"
CREATE_DONE = "storage.create"
CREATE_SECONDS = 20.0
SKUS = ("Standard_LRS", "Standard_GRS", "Standard_RAGRS", "Standard_ZRS", "Standard_GZRS", "Standard_RAGZRS",
        "Premium_LRS", "Premium_ZRS", "StandardV2_LRS", "StandardV2_GRS", "StandardV2_ZRS", "StandardV2_GZRS",
        "PremiumV2_LRS", "PremiumV2_ZRS")
KINDS = ("Storage", "StorageV2", "BlobStorage", "FileStorage", "BlockBlobStorage")
ACCESS_TIERS = ("Hot", "Cool", "Cold", "Premium")
KEY_NAMES = ("key1", "key2")
_NAME = re.compile(r"^[a-z0-9]{3,24}$")


# names ------------------------------------------------------------------------------------------
def name_error(name: str) -> str | None:
    if _NAME.match(name or ""):
        return None
    return (f"{name} is not a valid storage account name. Storage account name must be between 3 and 24 "
            "characters in length and use numbers and lower-case letters only.")


def taken_message(name: str) -> str:
    return f"The storage account named {name} is already taken."


def find(ctx: Context, name: str) -> Resource | None:
    """The account called ``name`` in any group (names are global)."""
    for account in ctx.store.of_type(ACCOUNT, f"/subscriptions/{ctx.subscription}"):
        if account.name.lower() == name.lower():
            return account
    return None


def check_name(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
    """``checkNameAvailability``: invalid names and names in use are not available."""
    name = body.get("name")
    if not isinstance(name, str):
        raise invalid("name")
    if str(body.get("type", ACCOUNT)).lower() != ACCOUNT.lower():
        raise invalid("type", f"Only '{ACCOUNT}' is supported.")
    problem = name_error(name)
    if problem:
        return {"nameAvailable": False, "reason": "AccountNameInvalid", "message": problem}
    if find(ctx, name) is not None:
        return {"nameAvailable": False, "reason": "AlreadyExists", "message": taken_message(name)}
    return {"nameAvailable": True}


# accounts ---------------------------------------------------------------------------------------
def account_rid(ctx: Context, group: str, name: str) -> str:
    return str(resource_id(ctx.subscription, group, NS, "storageAccounts", name))


def get_account(ctx: Context, group: str, name: str) -> Resource:
    g = get_group(ctx, group)
    found = ctx.store.get(account_rid(ctx, g.name, name))
    if found is None:
        raise resource_not_found(ACCOUNT, name, g.name)
    return found


def list_accounts(ctx: Context, group: str | None = None) -> list[Resource]:
    scope = get_group(ctx, group).id if group is not None else f"/subscriptions/{ctx.subscription}"
    return ctx.store.of_type(ACCOUNT, scope)


def put_account(ctx: Context, group: str, name: str, body: dict[str, Any], tags: dict[str, str],
                fail_with: dict[str, str] | None) -> tuple[Resource, str | None]:
    """Create an account (returns the operation that finishes it) or update an existing one's tags (no operation)."""
    problem = name_error(name)
    if problem:
        raise ArmError(problem, code="AccountNameInvalid", target="accountName")
    g = get_group(ctx, group)
    location = canonical(body.get("location"))
    sku = _sku(body.get("sku"))
    kind = body.get("kind", "StorageV2")
    if kind not in KINDS:
        raise invalid("kind", f"Use one of {', '.join(KINDS)}.")
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise invalid("properties")
    tier = _access_tier(props.get("accessTier"), sku, kind)
    holder = find(ctx, name)
    if holder is not None and holder.id.lower() != account_rid(ctx, g.name, name).lower():
        raise ArmError(taken_message(name), code="StorageAccountAlreadyTaken", status=409)
    if holder is not None:
        return _update_by_put(ctx, holder, location, sku, kind, tags), None
    keys = {k: _new_key() for k in KEY_NAMES}
    now = lro.iso(ctx.now())
    rid = account_rid(ctx, g.name, name)
    account = Resource(
        id=rid, type=ACCOUNT,
        body={
            "id": rid, "name": name, "type": ACCOUNT, "location": location, "tags": tags,
            "sku": {"name": sku, "tier": "Premium" if sku.startswith("Premium") else "Standard"},
            "kind": kind,
            "properties": {
                "provisioningState": "Creating",
                "primaryLocation": location,
                "statusOfPrimary": "available",
                "creationTime": now,
                "keyCreationTime": {k: now for k in KEY_NAMES},
                # Azurite serves plain HTTP: the blob endpoint is http://, so HTTPS-only would be a lie
                "supportsHttpsTrafficOnly": False,
                "allowBlobPublicAccess": bool(props.get("allowBlobPublicAccess", False)),
                "minimumTlsVersion": str(props.get("minimumTlsVersion", "TLS1_2")),
                "encryption": {"keySource": "Microsoft.Storage",
                               "services": {"blob": {"enabled": True, "keyType": "Account", "lastEnabledTime": now}}},
                "networkAcls": {"bypass": "AzureServices", "virtualNetworkRules": [], "ipRules": [],
                                "defaultAction": "Allow"},
                **({"accessTier": tier} if tier else {}),
            },
        },
        internal={"keys": keys},
    )
    process.ensure(ctx)  # Azurite must be there before anything is created: else ArmError, nothing changed
    ctx.store.put(account)
    sync_registry(ctx)
    op = lro.start(ctx, provider="storage", location=location, handler=CREATE_DONE, args={"id": rid},
                   delay=ctx.duration(CREATE_SECONDS), fail_with=fail_with)
    return account, op


def _update_by_put(ctx: Context, account: Resource, location: str, sku: str, kind: str,
                   tags: dict[str, str]) -> Resource:
    if account.body["location"] != location:
        raise ArmError(
            f"The resource '{account.name}' already exists in location '{account.body['location']}' in resource group "
            f"'{account.id.split('/')[4]}'. A resource with the same name cannot be created in location "
            f"'{location}'. Please select a new resource name.",
            code="InvalidResourceLocation", status=409,
        )
    if account.body["sku"]["name"] != sku:
        raise invalid("sku")
    if account.body["kind"] != kind:
        raise invalid("kind")
    account.body["tags"] = tags
    ctx.store.put(account)
    return account


def update_account(ctx: Context, group: str, name: str, body: dict[str, Any], tags: dict[str, str] | None) -> Resource:
    """``PATCH``: tags, sku and access tier change in place."""
    account = get_account(ctx, group, name)
    if tags is not None:
        account.body["tags"] = tags
    if body.get("sku") is not None:
        sku = _sku(body["sku"])
        account.body["sku"] = {"name": sku, "tier": "Premium" if sku.startswith("Premium") else "Standard"}
    tier = (body.get("properties") or {}).get("accessTier")
    if tier is not None:
        account.properties["accessTier"] = _access_tier(tier, account.body["sku"]["name"], account.body["kind"])
    ctx.store.put(account)
    return account


def delete_account(ctx: Context, group: str, name: str) -> bool:
    """Delete an account and its data; False when there was none (ARM answers 204)."""
    get_group(ctx, group)
    account = ctx.store.get(account_rid(ctx, group, name))
    if account is None:
        return False
    from emulator.core.lifecycle import remove

    remove(ctx, account)
    return True


def view(ctx: Context, account: Resource) -> dict[str, Any]:
    """The wire form: the stored body plus the blob endpoint of the Azurite running now."""
    body = dict(account.body)
    body["properties"] = {**account.properties, "primaryEndpoints": {"blob": client.endpoint(ctx, account.name)}}
    return body


# keys -------------------------------------------------------------------------------------------
def keys_of(account: Resource) -> dict[str, Any]:
    created = account.properties.get("keyCreationTime") or {}
    return {"keys": [{"keyName": k, "value": account.internal["keys"][k], "permissions": "FULL",
                      "creationTime": created.get(k)} for k in KEY_NAMES]}


def key(account: Resource, key_name: str = "key1") -> str:
    value: str = account.internal["keys"][key_name]
    return value


def regenerate_key(ctx: Context, group: str, name: str, body: dict[str, Any]) -> Resource:
    account = get_account(ctx, group, name)
    key_name = str(body.get("keyName", "")).lower()
    if key_name not in KEY_NAMES:
        raise invalid("keyName", "Use 'key1' or 'key2'.")
    account.internal["keys"][key_name] = _new_key()
    account.properties.setdefault("keyCreationTime", {})[key_name] = lro.iso(ctx.now())
    ctx.store.put(account)
    sync_registry(ctx)
    return account


def sas_key(account: Resource, body: dict[str, Any]) -> str:
    key_name = str(body.get("keyToSign") or "key1").lower()
    if key_name not in KEY_NAMES:
        raise invalid("keyToSign", "Use 'key1' or 'key2'.")
    return key(account, key_name)


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


def sync_registry(ctx: Context, *, without: str | None = None) -> None:
    """Write every account (but ``without``) and its keys to Azurite's registry."""
    entries = [(a.name, a.internal["keys"]["key1"], a.internal["keys"]["key2"])
               for a in ctx.store.of_type(ACCOUNT, f"/subscriptions/{ctx.subscription}")
               if without is None or a.key != without.lower()]
    process.write_accounts(ctx, entries)


# validation -------------------------------------------------------------------------------------
def _sku(value: Any) -> str:
    name = value.get("name") if isinstance(value, dict) else None
    if name not in SKUS:
        if value is None:
            raise InvalidParameter("Required parameter 'sku' is missing (null).", target="sku")
        raise invalid("sku", f"Use one of {', '.join(SKUS)}.")
    return str(name)


def _access_tier(value: Any, sku: str, kind: str) -> str | None:
    if value is None:
        return "Hot" if kind in ("StorageV2", "BlobStorage") and not sku.startswith("Premium") else None
    if value not in ACCESS_TIERS:
        raise invalid("accessTier", f"Use one of {', '.join(ACCESS_TIERS)}.")
    return str(value)


# operations and removal --------------------------------------------------------------------------
def _created(ctx: Context, args: dict[str, Any]) -> dict[str, Any] | None:
    account = ctx.store.get(args["id"])
    if account is None:
        return None
    account.properties["provisioningState"] = "Succeeded"
    ctx.store.put(account)
    return view(ctx, account)


def _create_failed(ctx: Context, args: dict[str, Any]) -> None:
    """A failed creation leaves nothing behind, as in Azure."""
    account = ctx.store.get(args["id"])
    if account is not None:
        ctx.store.delete(account.id)
        sync_registry(ctx)


lro.on_complete(CREATE_DONE, _create_failed)(_created)


@on_remove(ACCOUNT)
def _remove_data(ctx: Context, account: Resource) -> None:
    """An account leaving (deleted, or its group deleted): its containers go, then its registry entry."""
    from emulator.services.storage import containers

    try:
        containers.purge(ctx, account)
    except Exception:  # the account goes anyway; what is left in Azurite is unreachable without its keys
        log.warning("could not delete the data of storage account %s from Azurite", account.name, exc_info=True)
    sync_registry(ctx, without=account.id)


class _Lifecycle:
    """At start, Azurite's registry is rewritten from the store and Azurite runs if accounts exist; at stop it stops."""

    async def startup(self, ctx: Context) -> None:
        import asyncio

        sync_registry(ctx)
        if ctx.store.of_type(ACCOUNT, f"/subscriptions/{ctx.subscription}"):
            try:
                await asyncio.to_thread(process.ensure, ctx)
            except ArmError as exc:  # the emulator still serves everything else; storage calls report it
                log.warning("Azurite did not start: %s", exc.message)

    async def shutdown(self, ctx: Context) -> None:
        import asyncio

        await asyncio.to_thread(process.stop, ctx)


lifecycle = _Lifecycle()
