"""The pipeline's steps, one function per task, in the order a build runs them.

Each step is idempotent: it finds what an earlier try of the same run created (by the
deterministic names in the plan) and continues from there. Steps return small dicts of primitives
for XCom: ids, addresses, states, timings. Waiting is not done here: the operators defer to
triggers between steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from image_factory import changes, guest_commands, sysprep
from image_factory.definitions import check_scripts
from image_factory.errors import GuestScriptError, PermanentError, SmokeTestError
from image_factory.naming import PROJECT_TAG, TAG_IMAGE, TAG_PROJECT, TAG_VERSION_RUN, run_tags
from image_factory.pipeline.build import Build, include_dir, load_definition
from image_factory.plan import PlanError, RunIdentity, check_params, describe_plan, make_plan

SSH_PORT, WINRMS_PORT = 22, 5986
RUN_TTL = timedelta(hours=12)


def timed(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run a step; its result says how long it took (``seconds``: the report's and lineage's stage timings)."""
    started = time.monotonic()
    out = fn()
    out["seconds"] = round(time.monotonic() - started, 3)
    return out


# 1. validate and plan ---------------------------------------------------------------
def plan_run(image: str, dag_id: str, run_id: str, params: dict[str, Any], azure_conn_id: str, *,
             run_type: str = "manual") -> dict[str, Any]:
    """Validate everything and decide the version; reads from Azure, writes nothing."""
    from image_factory.hooks.compute import ComputeHook
    from image_factory.hooks.gallery import GalleryHook

    definition = load_definition(image)
    check_scripts(definition, include_dir() / "scripts", source=f"images/{image}.yaml")
    clean = check_params(params, definition)
    compute, gallery = ComputeHook(azure_conn_id), GalleryHook(azure_conn_id)
    resolved = _resolve_source_version(definition, clean.get("source_version"), compute, gallery)
    disk_path = None
    if definition.source.disk:
        from image_factory.pipeline import imports

        disk_path = imports.resolve_disk_path(definition, clean.get("disk_path"))
    existing = gallery.list_versions(definition.gallery_resource_group, definition.gallery_name, definition.definition)
    plan = make_plan(definition, RunIdentity(dag_id, run_id), clean, resolved_source_version=resolved,
                     existing_versions=existing, subscription_id=compute.subscription_id, disk_path=disk_path)
    plan["planned_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    plan["changes"] = _change_check(definition, plan, run_type, gallery)
    if plan["plan_only"]:
        plan["preview"] = describe_plan(definition, plan)
        _log_preview(plan["preview"])
    return plan


def _change_check(definition: Any, plan: dict[str, Any], run_type: str, gallery: Any) -> dict[str, Any]:
    """What this run is made of, compared with the newest published version (checked again in the guest)."""
    import logging

    may_skip, why = changes.policy(definition.publish_when_unchanged, run_type)
    source, scripts = changes.source_tag(plan["source"]), changes.scripts_digest(definition.scripts)
    if plan["source_kind"] == "disk":
        may_skip, why = False, "an imported disk is published as it is: there is nothing to compare before upload"
        found = {"candidate": False, "against": None, "against_updates": None, "detail": why}
    elif plan["version_reused"]:  # an earlier try of this run already started publishing: finish it
        found = {"candidate": False, "against": None, "against_updates": None,
                 "detail": f"this run already created version {plan['version']}"}
    elif definition.gallery_version:
        found = changes.compare(gallery.published_versions(definition.gallery_resource_group, definition.gallery_name,
                                                           definition.definition),
                                run_id=plan["run_id"], source=source, scripts=scripts)
    else:
        found = {"candidate": False, "against": None, "against_updates": None,
                 "detail": "no gallery version to compare with (the definition publishes a managed image only)"}
    check = {"may_skip": may_skip, "policy": why, "run_type": run_type, "source": source, "scripts": scripts,
             "check_updates": not definition.publish_when_unchanged, **found}
    logging.getLogger(__name__).info("Change check (%s run): %s; %s", run_type, why, found["detail"])
    return check


def _log_preview(preview: dict[str, Any]) -> None:
    import logging

    log = logging.getLogger(__name__)
    log.info("Plan only: version %s. The run would create:", preview["version"])
    for line in preview["creates"]:
        log.info("  + %s", line)
    for line in preview["changes"]:
        log.info("  ~ %s", line)
    for vm in preview["cost"]["vm_hours"]:
        log.info("  $ %s x%d, about %.2f h each (%s)", vm["size"], vm["count"], vm["hours_each"], vm["what"])


def _resolve_source_version(definition: Any, pinned: str | None, compute: Any, gallery: Any) -> str | None:
    source = definition.source
    if source.marketplace:
        m = source.marketplace
        wanted = pinned or m.get("version", "latest")
        try:
            return str(compute.resolve_marketplace_version(definition.build_location, m["publisher"], m["offer"],
                                                           m["sku"], wanted))
        except LookupError as exc:
            raise PlanError(f"source.marketplace: {exc}") from None
    if source.gallery_image_version:
        g = source.gallery_image_version
        wanted = pinned or g.get("version", "latest")
        versions = {v["name"]: v for v in gallery.published_versions(g["resource_group"], g["gallery"], g["definition"])
                    if v["provisioning_state"] == "Succeeded"}
        if wanted == "latest":  # as Azure resolves it: the newest version not excluded from latest
            eligible = [n for n, v in versions.items() if not v["exclude_from_latest"]]
            if not eligible:
                raise PlanError(f"source.gallery_image_version: {g['gallery']}/{g['definition']} has no published "
                                "version that latest may resolve to")
            wanted = max(eligible, key=lambda n: tuple(int(p) for p in n.split(".")))
        elif wanted not in versions:
            raise PlanError(f"source.gallery_image_version.version: {wanted} is not a published version of "
                            f"{g['gallery']}/{g['definition']}")
        _refuse_revoked(versions[wanted], f"{g['gallery']}/{g['definition']}")
        return str(wanted)
    return None


def _refuse_revoked(version: dict[str, Any], where: str) -> None:
    """A revoked version (its tag, or the lineage store) must not feed a new build."""
    from image_factory.hooks.lineage import lineage_store
    from image_factory.revocation import revocation_in_tags

    found = revocation_in_tags(version["tags"]) or (lineage_store().find(version["id"]) or {}).get("revoked")
    if found:
        raise PlanError(f"source.gallery_image_version.version: {version['name']} of {where} was revoked at "
                        f"{found['at']} ({found['reason'] or 'no reason given'}); it must not be built from: "
                        "pin another version or use latest")


# 2. build environment (setup) ---------------------------------------------------------
def build_environment(b: Build) -> dict[str, Any]:
    """The run's resource group and network (SSH/WinRM only from the worker), plus the gallery side:
    the gallery's group locked against deletes, the image definition shared as the definition says."""
    def run() -> dict[str, Any]:
        d, names = b.definition, b.names
        tags = run_tags(d.name, b.plan["run_id"], datetime.now(UTC), RUN_TTL)
        b.groups.ensure_resource_group(b.resource_group, d.build_location, tags)
        ensure_gallery_side(b)
        allow = b.network.allowed_source()
        net = b.network.ensure_build_network(
            b.resource_group, d.build_location, vnet=names.vnet, subnet=names.subnet, nsg=names.nsg,
            public_ip=names.public_ip("build"), nic=names.nic("build"), allow_from=allow,
            ports=[WINRMS_PORT] if b.windows else [SSH_PORT], tags=tags)
        return {"resource_group": b.resource_group, "nic_id": net["nic_id"], "allowed_source": allow,
                "address": b.network.public_ip_address(b.resource_group, names.public_ip("build"))}
    return timed(run)


def ensure_gallery_side(b: Build) -> dict[str, str]:
    """The golden images' group (locked against deletes), the gallery and the image definition, shared as the
    definition says; returns the permanent tags these carry."""
    from image_factory.hooks.access import AccessHook

    d = b.definition
    permanent = {TAG_PROJECT: PROJECT_TAG, TAG_IMAGE: d.name}
    b.groups.ensure_resource_group(d.gallery_resource_group, d.gallery_location, permanent)
    access = AccessHook(b.azure_conn_id)
    access.ensure_delete_lock(d.gallery_resource_group)
    if d.gallery_version:
        b.gallery.ensure_gallery(d.gallery_resource_group, d.gallery_name, d.gallery_location, permanent)
        definition_id = b.gallery.ensure_image_definition(d.gallery_resource_group, d.gallery_name, d)
        for i, share in enumerate(d.sharing):
            access.ensure_role_assignment(definition_id, share.principal_id, share.role, share.principal_type,
                                          field=f"sharing[{i}].role")
    return permanent


# 3. provision the source VM --------------------------------------------------------------
def provision(b: Build, env: dict[str, Any]) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        d, plan = b.definition, b.plan
        creds: dict[str, Any] = ({"admin_password": b.password()} if b.windows
                                 else {"ssh_public_key": b.ssh_keys().public_openssh})
        vm = b.compute.ensure_vm(
            b.resource_group, plan["build_vm"], location=d.build_location, size=d.vm_size, image=plan["source"],
            os_type=d.os_type, computer_name=plan["build_computer_name"], admin_username=plan["build_user"],
            nic_id=env["nic_id"], tags=run_tags(d.name, plan["run_id"], datetime.now(UTC), RUN_TTL), wait=False,
            **creds)
        return {"vm_id": vm["id"], "created": vm["created"], "address": env["address"],
                "port": WINRMS_PORT if b.windows else SSH_PORT}
    return timed(run)


def guest_port(b: Build) -> tuple[int, str]:
    return (WINRMS_PORT, "winrm") if b.windows else (SSH_PORT, "ssh")


# 4. connect: pin the host key through ARM (not trust on first use) ------------------------------
def pin_host_key(b: Build, vm_name: str) -> str | None:
    """The guest's SSH host key as the guest itself reports it through runCommand (Linux only)."""
    if b.windows:
        return None
    return str(b.compute.ssh_host_key(b.resource_group, vm_name))


def ssh(b: Build, address: str, host_key: str, *, user: str, role: str = "build") -> Any:
    from image_factory.hooks.guest import GuestSSHHook

    return GuestSSHHook(host=address, username=user, key_pair=b.ssh_keys(role), host_key=host_key)


def winrm(b: Build, address: str, *, user: str, role: str = "build") -> Any:
    from image_factory.hooks.guest import GuestWinRMHook

    return GuestWinRMHook(host=address, username=user, password=b.password(role), local_azure=b.is_local)


def _guest(b: Build, ready: dict[str, Any], *, user: str, role: str = "build") -> Any:
    if b.windows:
        return winrm(b, ready["address"], user=user, role=role)
    return ssh(b, ready["address"], ready["host_key"], user=user, role=role)


# 4b. anything changed? ------------------------------------------------------------------
def check_changes(b: Build, ready: dict[str, Any]) -> dict[str, Any]:
    """The guest's pending package updates (recorded on the version) and whether this run publishes, and why."""
    import logging

    def run() -> dict[str, Any]:
        check = b.plan.get("changes") or {"policy": "planned without a change check: publishing"}
        updates: str | None = None
        unknown = ""
        if not check.get("check_updates"):
            unknown = f"not checked: {changes.OPTION} is true"
        elif b.windows:  # no dependable, module-free way to ask Windows Update what it would install
            updates, unknown = changes.UNKNOWN, "a Windows guest's pending updates are not checked"
        else:
            guest = _guest(b, ready, user=b.plan["build_user"])
            guest.run_script("wait for cloud-init", guest_commands.LINUX_WAIT_FOR_CLOUD_INIT, check=False)
            try:
                updates = changes.updates_tag(guest.pending_upgrades())
            except GuestScriptError as exc:  # e.g. no mirror reachable: unknown, so the run publishes
                updates, unknown = changes.UNKNOWN, str(exc).split("; last lines", 1)[0]
        decision = changes.decide(check, updates, unknown)
        logging.getLogger(__name__).info("%s: %s", "Publishing" if decision["publish"] else
                                         "Not publishing (teardown deletes the build VM)", decision["reason"])
        return {**decision, "updates": updates, "against": check.get("against")}
    return timed(run)


# 5. customise --------------------------------------------------------------------------
def customise(b: Build, ready: dict[str, Any]) -> dict[str, Any]:
    """Run the definition's scripts in order; a failure names the script, exit code and output tail."""
    def run() -> dict[str, Any]:
        guest = _guest(b, ready, user=b.plan["build_user"])
        params = {"IMAGE_NAME": b.definition.name, "IMAGE_VERSION": b.plan["version"],
                  "IMAGE_DEFINITION": b.definition.definition}
        scripts = []
        if not b.windows:  # first-boot cloud-init may still hold apt and write files the scripts touch
            guest.run_script("wait for cloud-init", guest_commands.LINUX_WAIT_FOR_CLOUD_INIT, check=False)
        for script in b.definition.scripts:
            text = (include_dir() / "scripts" / script.path).read_text()
            result = guest.run_script(script.path, text, params=params)
            scripts.append({"path": script.path, "sha256": script.sha256, "seconds": round(result.seconds, 3)})
        manifest = guest.package_manifest()
        return {"scripts": scripts, "packages": [f"{name}={version}" for name, version in manifest]}
    return timed(run)


# 6. generalize (or just power off, for a specialized image) -----------------------------------
WINDOWS_SHUTDOWN = "shutdown /s /t 0 /f"


def needs_sysprep(b: Build) -> bool:
    """A generalized Windows image: sysprep works for minutes after it returns (the operator waits deferred)."""
    return b.windows and b.definition.generalized


def generalize_guest(b: Build, ready: dict[str, Any]) -> dict[str, Any]:
    """One command after which the guest powers itself off: deprovision (Linux generalized) or a plain shutdown."""
    if needs_sysprep(b):
        raise ValueError("a generalized Windows guest is sysprepped: sysprep_start, sysprep_state, sysprep_shutdown")

    def run() -> dict[str, Any]:
        guest = _guest(b, ready, user=b.plan["build_user"])
        if not b.windows:
            command = (guest_commands.linux_generalize_command() if b.definition.generalized
                       else guest_commands.linux_shutdown_command())
            seen = guest.run_detached_shutdown(command)
            return {"mode": "deprovision" if b.definition.generalized else "shutdown", "output": str(seen)[-2000:]}
        guest.run_script("shutdown", WINDOWS_SHUTDOWN)
        return {"mode": "shutdown"}
    return timed(run)


def sysprep_start(b: Build, ready: dict[str, Any]) -> tuple[bool, str]:
    """Start sysprep unless ImageState shows an earlier try already ran it; (started now, ImageState after)."""
    guest = _guest(b, ready, user=b.plan["build_user"])
    state = str(guest.image_state())
    if not sysprep.must_start(state):
        return False, state
    guest.run_script("sysprep", guest.sysprep_command())
    return True, str(guest.image_state())


def sysprep_state(b: Build, ready: dict[str, Any]) -> str:
    """The build VM's ImageState now (its WinRM password derived again from the run, never carried)."""
    return str(_guest(b, ready, user=b.plan["build_user"]).image_state())


def sysprep_shutdown(b: Build, ready: dict[str, Any]) -> None:
    _guest(b, ready, user=b.plan["build_user"]).run_script("shutdown", WINDOWS_SHUTDOWN)


# 7. deallocate + ARM generalize ------------------------------------------------------------
def deallocate_and_mark(b: Build) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        vm = b.plan["build_vm"]
        b.compute.deallocate(b.resource_group, vm)
        if b.definition.generalized:
            b.compute.generalize(b.resource_group, vm)
        return {"generalized": b.definition.generalized}
    return timed(run)


# 8. capture -----------------------------------------------------------------------------
def capture(b: Build, vm_id: str, checked: dict[str, Any] | None = None) -> dict[str, Any]:
    """The managed image and/or the gallery version (excluded from latest until promoted).

    Tags record what the image is made of, for the next run's change check: the source, the
    scripts' digest and (when checked) the package updates the source's guest was offered.
    """

    def run() -> dict[str, Any]:
        d, plan = b.definition, b.plan
        out: dict[str, Any] = {"version": plan["version"]}
        tags = {TAG_VERSION_RUN: plan["run_id"][:256], "image": d.name,
                changes.TAG_SOURCE: _source_tag(plan), "reason": str(plan.get("reason", ""))[:256],
                changes.TAG_SCRIPTS: changes.scripts_digest(d.scripts)}
        if updates := (checked or {}).get("updates"):
            tags[changes.TAG_UPDATES] = str(updates)[:256]
        source_id = vm_id
        if d.managed_image:
            m = d.managed_image
            out["managed_image_id"] = b.compute.ensure_managed_image(
                m["resource_group"], managed_image_name(m["name"], plan["version"]), location=m["location"],
                vm_id=vm_id, hyper_v_generation=d.hyper_v_generation, tags=tags)
        if d.gallery_version:
            out["version_id"] = begin_version(b, tags, source_id=source_id)
        return out
    return timed(run)


def begin_version(b: Build, tags: dict[str, str], *, source_id: str | None = None,
                  vhd: tuple[str, str] | None = None) -> str:
    """Start this run's gallery version (excluded from latest) from a VM, image or version, or an uploaded VHD
    (blob URI, storage account id); a retry finds it. Returns its id."""
    from image_factory.hooks.access import AccessHook

    d, plan = b.definition, b.plan
    g = (d.gallery_resource_group, d.gallery_name, d.definition, plan["version"])
    owner = next((v.run_id for v in b.gallery.list_versions(*g[:3]) if v.name == plan["version"]), plan["run_id"])
    if owner != plan["run_id"]:  # another run took this number since planning: never touch its version
        raise PermanentError(f"gallery version {plan['version']} was published meanwhile by run {owner!r}; "
                             "run the DAG again to take the next version")
    status = b.gallery.version_status(*g)
    if status and status["provisioning_state"] == "Failed":
        with AccessHook(b.azure_conn_id).lock_lifted(d.gallery_resource_group):
            b.gallery.delete_version(*g)  # a failed earlier try: replaced, never patched in place
        status = None
    if status is None:
        eol = (datetime.now(UTC) + timedelta(days=d.end_of_life_days)) if d.end_of_life_days else None
        b.gallery.begin_create_version(*g, location=d.gallery_location, source_id=source_id, vhd=vhd,
                                       regions=plan["regions"], exclude_from_latest=True, end_of_life=eol, tags=tags)
    return (f"/subscriptions/{b.compute.subscription_id}/resourceGroups/{g[0]}/providers/"
            f"Microsoft.Compute/galleries/{g[1]}/images/{g[2]}/versions/{g[3]}")


def managed_image_name(base: str, version: str) -> str:
    """Managed images have no versions: each build's image carries the version in its name."""
    return f"{base}-{version}"


def _source_tag(plan: dict[str, Any]) -> str:
    return changes.source_tag(plan["source"])


# 9. smoke test, per region -------------------------------------------------------------------
def smoke_names(b: Build, region: str) -> dict[str, str]:
    role = b.names.smoke_role(region)
    return {"vm": b.names.vm(role), "computer_name": b.names.computer_name("smoke"),
            "nic": b.names.nic(role), "public_ip": b.names.public_ip(role), "vnet": b.names.smoke_vnet(region),
            "nsg": b.names.smoke_nsg(region), "role": role}


def smoke_create(b: Build, region: str, image_id: str) -> dict[str, Any]:
    """A VM from the exact new version (never ``latest``) in ``region``, on its own network."""
    def run() -> dict[str, Any]:
        d, n = b.definition, smoke_names(b, region)
        tags = run_tags(d.name, b.plan["run_id"], datetime.now(UTC), RUN_TTL)
        net = b.network.ensure_build_network(
            b.resource_group, region, vnet=n["vnet"], subnet="smoke", nsg=n["nsg"], public_ip=n["public_ip"],
            nic=n["nic"], allow_from=b.network.allowed_source(), ports=[WINRMS_PORT] if b.windows else [SSH_PORT],
            tags=tags)
        specialized = not d.generalized
        creds: dict[str, Any] = {}
        user = b.plan["build_user"] if specialized else b.plan["smoke_user"]
        if not specialized:
            creds = ({"admin_password": b.password("smoke")} if b.windows
                     else {"ssh_public_key": b.ssh_keys("smoke").public_openssh})
        b.compute.ensure_vm(
            b.resource_group, n["vm"], location=region, size=d.smoke_vm_size, image={"id": image_id},
            os_type=d.os_type, computer_name=n["computer_name"], admin_username=user, nic_id=net["nic_id"],
            tags=tags, specialized=specialized, wait=False, **creds)
        return smoke_vm(b, region)
    return timed(run)


def smoke_vm(b: Build, region: str) -> dict[str, Any]:
    """Where the region's smoke VM is and who logs in (derived again after a deferral, never carried)."""
    n = smoke_names(b, region)
    user = b.plan["smoke_user"] if b.definition.generalized else b.plan["build_user"]
    return {"region": region, "vm": n["vm"], "user": user,
            "address": b.network.public_ip_address(b.resource_group, n["public_ip"])}


def _probe(b: Build, guest: Any, name: str, command: str) -> Any:
    """Run a check command as the login user (no sudo); its exit code is the answer, not an error."""
    if b.windows:
        return guest.run_script(name, command, check=False)
    return guest.run_script(name, command, sudo=False, check=False)


def smoke_check(b: Build, smoke: dict[str, Any]) -> dict[str, Any]:
    """Boots, new identity (generalized) or kept identity (specialized), build user gone, checks pass."""
    d, plan = b.definition, b.plan
    results: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        results.append({"name": name, "passed": bool(ok), "detail": detail[-300:]})

    if plan.get("source_kind") == "disk" and not d.generalized:
        return _smoke_through_run_command(b, smoke)
    role = "build" if not d.generalized else "smoke"
    ready = {"address": smoke["address"], "host_key": pin_host_key(b, smoke["vm"])}
    guest = _guest(b, ready, user=smoke["user"], role=role)
    check("boots and accepts a login", True)
    hostname = _probe(b, guest, "hostname", "hostname").stdout.strip()
    if d.generalized:
        expected = smoke_names(b, smoke["region"])["computer_name"]
        check("new hostname", hostname.lower() == expected.lower(), f"{hostname} (expected {expected})")
        gone = (f"if (net user {plan['build_user']} 2>$null) {{ exit 1 }} else {{ exit 0 }}" if b.windows
                else f"! id -u {plan['build_user']} >/dev/null 2>&1")
        r = _probe(b, guest, "build user gone", gone)
        check("build user gone", r.exit_code == 0, r.stdout + r.stderr)
    else:
        expected = plan["build_computer_name"]
        check("kept hostname (specialized)", hostname.lower() == expected.lower(), f"{hostname} (expected {expected})")
    for c in d.smoke_checks:
        r = _probe(b, guest, c.name, c.command)
        passed = r.exit_code == 0 and (c.expect_output is None or c.expect_output in r.stdout)
        check(c.name, passed, (r.stdout + r.stderr).strip())
    return {"region": smoke["region"], "passed": all(r["passed"] for r in results), "checks": results}


EXIT_MARK = "__smoke_exit__="


def _smoke_through_run_command(b: Build, smoke: dict[str, Any]) -> dict[str, Any]:
    """A specialized imported disk keeps its own accounts, whose credentials the factory never had: its checks
    run through Run Command (the VM agent), as an operator would reach such a VM, not over SSH."""
    def probe(command: str) -> tuple[int, str]:
        # Run Command runs the lines as one shell script: the last line reports the check's exit status
        out = b.compute.run_shell(b.resource_group, smoke["vm"], f"{command}\necho {EXIT_MARK}$?", windows=False)
        output, mark, status = out["stdout"].rpartition(EXIT_MARK)  # output need not end with a newline
        if not mark or not status.strip().isdigit():
            return -1, (out["stdout"] + out["stderr"]).strip()
        return int(status.strip()), (output + out["stderr"]).strip()

    code, hostname = probe("hostname")
    results = [{"name": "boots and its VM agent runs commands (specialized: no login credentials)",
                "passed": code == 0, "detail": f"hostname {hostname}"[-300:]}]
    for c in b.definition.smoke_checks:
        code, output = probe(c.command)
        passed = code == 0 and (c.expect_output is None or c.expect_output in output)
        results.append({"name": c.name, "passed": passed, "detail": output[-300:]})
    return {"region": smoke["region"], "passed": all(r["passed"] for r in results), "checks": results}


def smoke_delete(b: Build, smoke_vm: str) -> bool:
    return bool(b.compute.delete_vm(b.resource_group, smoke_vm))


# 10. promote ---------------------------------------------------------------------------
def promote(b: Build, replication: dict[str, Any], smoke_results: list[dict[str, Any]]) -> dict[str, Any]:
    """excludeFromLatest false only if every region replicated and passed its smoke test."""
    d, plan = b.definition, b.plan
    failed = [r["region"] for r in smoke_results if not r.get("passed")]
    wanted = {r["name"] for r in plan["regions"]}
    tested = {r["region"] for r in smoke_results}
    if wanted - tested:
        failed += sorted(wanted - tested)
    if failed:
        raise SmokeTestError(f"version {plan['version']} stays excluded from latest: smoke tests failed or "
                             f"did not run in {', '.join(sorted(set(failed)))}")
    if d.gallery_version:
        b.gallery.promote(d.gallery_resource_group, d.gallery_name, d.definition, plan["version"])
    return {"promoted": d.gallery_version, "version": plan["version"], "regions": sorted(wanted)}


# 11. teardown ---------------------------------------------------------------------------
def begin_teardown(b_or_conn: Any, resource_group: str) -> bool:
    """Start deleting the run's resource group (everything temporary is in it)."""
    from image_factory.hooks.resources import ResourceGroupHook

    hook = b_or_conn.groups if isinstance(b_or_conn, Build) else ResourceGroupHook(str(b_or_conn))
    return bool(hook.begin_delete_resource_group(resource_group))



# 12. report ------------------------------------------------------------------------------
def report(plan: dict[str, Any], stages: dict[str, Any]) -> dict[str, Any]:
    """What the run built, why it published, where it lives, how it tested, and how long each stage took."""
    timings = {name: out.get("seconds") for name, out in stages.items()
               if isinstance(out, dict) and isinstance(out.get("seconds"), (int, float))}
    smoke = [s for s in (stages.get("smoke_test") or []) if isinstance(s, dict)]
    per_region = {s["region"]: sum(float(s.get(k) or 0.0) for k in ("create_seconds", "boot_seconds", "check_seconds"))
                  for s in smoke}
    if per_region:
        timings["smoke_test"] = round(max(per_region.values()), 3)  # regions run side by side
    regions = (stages.get("replicate") or {}).get("regions", {})
    if regions:
        timings["replicate"] = max(float(r.get("seconds") or 0.0) for r in regions.values())
    custom = stages.get("customise") or {}
    capture_out = stages.get("capture") or {}
    return {
        "image": plan["image"],
        "version": plan["version"],
        "publish_decision": (stages.get("check_changes") or {}).get("reason", ""),
        "version_id": capture_out.get("version_id"),
        "managed_image_id": capture_out.get("managed_image_id"),
        "source": plan["source"],
        "regions": regions,
        "smoke": {s["region"]: {"passed": s["passed"], "checks": s["checks"],
                                "seconds": round(per_region[s["region"]], 3)} for s in smoke},
        "scripts": custom.get("scripts", []),
        "packages": custom.get("packages", []),
        "stage_seconds": timings,
        "run_id": plan["run_id"],
        "reason": plan.get("reason", ""),
    }
