"""Microsoft.Storage handlers: parse the request, call the model, shape the answer.

Account creation answers as Azure does: 202 with ``Location`` and ``Retry-After``; that URL answers
202 until the account is provisioned, then 200 with the account (what ``begin_create`` returns).
Updates, deletes, keys and SAS are synchronous. SAS tokens are signed with the account key, so
Azurite accepts them; its endpoint is plain HTTP, so a SAS limited to ``https`` is refused there.
"""

from __future__ import annotations

from emulator.core.responses import listing, operation_status, retry_after, tags_of
from emulator.core.routing import ArmRequest, ArmResponse
from emulator.services.storage import containers, models, sas
from emulator.storage.azurite import process


def _status_path(req: ArmRequest, location: str, op_id: str) -> str:
    return f"/subscriptions/{req.ctx.subscription}/providers/Microsoft.Storage/locations/{location}/asyncoperations/{op_id}"


def check_name(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, models.check_name(req.ctx, req.json()))


def put_account(req: ArmRequest) -> ArmResponse:
    body = req.json()
    account, op_id = models.put_account(req.ctx, req.params["group"], req.params["name"], body, tags_of(body),
                                        req.lro_failure)
    if op_id is None:
        return ArmResponse(200, models.view(req.ctx, account))
    location = req.url(_status_path(req, account.body["location"], op_id), monitor="true")
    return ArmResponse(202, None, {"Location": location, "Retry-After": retry_after(req)})


def get_account(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, models.view(req.ctx, models.get_account(req.ctx, req.params["group"], req.params["name"])))


def patch_account(req: ArmRequest) -> ArmResponse:
    body = req.json()
    tags = tags_of(body) if "tags" in body else None
    account = models.update_account(req.ctx, req.params["group"], req.params["name"], body, tags)
    return ArmResponse(200, models.view(req.ctx, account))


def delete_account(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200 if models.delete_account(req.ctx, req.params["group"], req.params["name"]) else 204)


def list_group(req: ArmRequest) -> ArmResponse:
    return listing([models.view(req.ctx, a) for a in models.list_accounts(req.ctx, req.params["group"])])


def list_subscription(req: ArmRequest) -> ArmResponse:
    return listing([models.view(req.ctx, a) for a in models.list_accounts(req.ctx)])


def list_keys(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, models.keys_of(models.get_account(req.ctx, req.params["group"], req.params["name"])))


def regenerate_key(req: ArmRequest) -> ArmResponse:
    account = models.regenerate_key(req.ctx, req.params["group"], req.params["name"], req.json())
    return ArmResponse(200, models.keys_of(account))


def list_account_sas(req: ArmRequest) -> ArmResponse:
    account = models.get_account(req.ctx, req.params["group"], req.params["name"])
    body = req.json()
    return ArmResponse(200, {"accountSasToken": sas.account_sas(account.name, models.sas_key(account, body), body)})


def list_service_sas(req: ArmRequest) -> ArmResponse:
    account = models.get_account(req.ctx, req.params["group"], req.params["name"])
    body = req.json()
    return ArmResponse(200, {"serviceSasToken": sas.service_sas(account.name, models.sas_key(account, body), body)})


def operation(req: ArmRequest) -> ArmResponse:
    return operation_status(req, req.params["operation"])


# containers -----------------------------------------------------------------------------------------
def put_container(req: ArmRequest) -> ArmResponse:
    p = req.params
    body = req.body if isinstance(req.body, dict) else None
    wire, created = containers.put_container(req.ctx, p["group"], p["name"], p["container"], body)
    return ArmResponse(201 if created else 200, wire)


def get_container(req: ArmRequest) -> ArmResponse:
    p = req.params
    return ArmResponse(200, containers.get_container(req.ctx, p["group"], p["name"], p["container"]))


def delete_container(req: ArmRequest) -> ArmResponse:
    p = req.params
    return ArmResponse(200 if containers.delete_container(req.ctx, p["group"], p["name"], p["container"]) else 204)


def list_containers(req: ArmRequest) -> ArmResponse:
    return listing(containers.list_containers(req.ctx, req.params["group"], req.params["name"]))


# operations API ---------------------------------------------------------------------------------------
def azurite_status(req: ArmRequest) -> ArmResponse:
    """``GET /_emulator/storage``: the Azurite this emulator runs and the accounts it serves."""
    running = process.current(req.ctx)
    accounts = [a.name for a in req.ctx.store.of_type(models.ACCOUNT, f"/subscriptions/{req.ctx.subscription}")]
    return ArmResponse(200, {
        "running": running is not None,
        "pid": running.pid if running else None,
        "port": running.port if running else None,
        "url": running.url if running else None,
        "log": str(process.log_file(req.ctx)),
        "accounts": accounts,
    })
