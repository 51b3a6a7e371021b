"""Cmdlets of the simulated Windows guest's PowerShell (registered into winshell.CMDLETS on import)."""

from __future__ import annotations

import datetime
import fnmatch
import json
from typing import Any

from emulator.guests.simulated import catalog
from emulator.guests.simulated import psparse as pp
from emulator.guests.simulated.session import wait
from emulator.guests.simulated.winshell import (
    CMDLETS,
    CRLF,
    SIMULATED,
    Bound,
    Cmdlet,
    PowerShell,
    PSObject,
    cmdlet,
    file_exists,
    file_read,
    file_write,
    find_native,
    flatten,
    format_objects,
    get_property,
    is_registry,
    reg_key,
    reg_read,
    reg_write,
    sleep_scaled,
    start_sysprep,
    to_json,
    to_str,
    truthy,
    win_path,
)


def _items(b: Bound, name: str) -> list[Any]:
    return flatten(b.get(name)) + b.positional


# output -----------------------------------------------------------------------------------------
@cmdlet("Write-Output", params=("InputObject",), switches=("NoEnumerate",), aliases=("echo", "write"),
        pipeline="InputObject")
def write_output(ps: PowerShell, b: Bound) -> list[Any]:
    return _items(b, "InputObject")


@cmdlet("Write-Host", params=("Object", "ForegroundColor", "BackgroundColor", "Separator"), switches=("NoNewline",))
def write_host(ps: PowerShell, b: Bound) -> list[Any]:
    """Host output: over WinRM it reaches the client's stdout."""
    sep = to_str(b.get("Separator")) if b.has("Separator") else " "
    text = sep.join(to_str(x) for x in _items(b, "Object"))
    ps.ctx.out.write(text + ("" if b.get("NoNewline") else CRLF))
    return []


@cmdlet("Write-Error", params=("Message", "Category"))
def write_error(ps: PowerShell, b: Bound) -> list[Any]:
    ps.error(to_str(b.get("Message")), command=ps.current_text.split()[0] if ps.current_text else "Write-Error",
             category="NotSpecified: (:) [Write-Error], WriteErrorException", fqid="Microsoft.PowerShell.Commands."
             "WriteErrorException")
    return []


@cmdlet("Write-Warning", params=("Message",))
def write_warning(ps: PowerShell, b: Bound) -> list[Any]:
    ps.ctx.out.write(f"WARNING: {to_str(b.get('Message'))}{CRLF}")
    return []


@cmdlet("Write-Verbose", params=("Message",))
def write_quiet(ps: PowerShell, b: Bound) -> list[Any]:
    """Verbose, debug, information and progress streams are not shown to a WinRM client by default."""
    return []


for _name in ("Write-Debug", "Write-Information", "Write-Progress"):
    CMDLETS[_name.lower()] = Cmdlet(_name, write_quiet, ("Message", "Activity", "Status", "PercentComplete"),
                                    ("Completed",))


@cmdlet("Out-Null", params=("InputObject",), pipeline="InputObject")
def out_null(ps: PowerShell, b: Bound) -> list[Any]:
    return []


@cmdlet("Out-String", params=("InputObject",), switches=("Stream",), pipeline="InputObject",
        param_aliases={"width": "Width"})
def out_string(ps: PowerShell, b: Bound) -> list[Any]:
    return [format_objects(_items(b, "InputObject"))]


CMDLETS["out-string"].params = ("InputObject", "Width")


@cmdlet("Format-List", params=("Property",), pipeline="InputObject", aliases=("fl",))
def format_list(ps: PowerShell, b: Bound) -> list[Any]:
    items = flatten(b.input) if b.input is not None else []
    out = []
    for it in items:
        if isinstance(it, PSObject):
            props = [to_str(p) for p in flatten(b.get("Property"))] or list(it.keys())
            sel = PSObject("list", {k: v for k, v in it.items() if any(fnmatch.fnmatch(k.lower(), p.lower())
                                                                        for p in props)})
            out.append(format_objects([sel, PSObject("list", {f"_{i}": None for i in range(5)})])
                       .split(CRLF + CRLF + "_0")[0] + CRLF)
        else:
            out.append(to_str(it))
    return ["".join(out)] if out else []


@cmdlet("Format-Table", params=("Property",), switches=("AutoSize", "HideTableHeaders"), pipeline="InputObject",
        aliases=("ft",))
def format_table(ps: PowerShell, b: Bound) -> list[Any]:
    items = flatten(b.input) if b.input is not None else []
    props = [to_str(p) for p in flatten(b.get("Property"))]
    if props:
        items = [PSObject("table", {p: get_property(i, p) for p in props}) for i in items]
    return [format_objects(items)] if items else []


@cmdlet("Out-File", params=("FilePath",), switches=("Append", "Force", "NoNewline"), pipeline="InputObject",
        param_aliases={"encoding": "Encoding", "inputobject": "InputObject", "path": "FilePath"})
def out_file(ps: PowerShell, b: Bound) -> list[Any]:
    text = format_objects(flatten(b.get("InputObject")))
    return _write_file(ps, to_str(b.get("FilePath")), text, append=bool(b.get("Append")), command="Out-File")


CMDLETS["out-file"].params = ("FilePath", "Encoding", "InputObject")


# pipeline helpers ---------------------------------------------------------------------------------
@cmdlet("Select-Object", params=("Property",), switches=("Unique",), pipeline="InputObject", aliases=("select",),
        param_aliases={"expandproperty": "ExpandProperty", "first": "First", "last": "Last", "skip": "Skip",
                       "inputobject": "InputObject"})
def select_object(ps: PowerShell, b: Bound) -> list[Any]:
    items = flatten(b.input) if b.input is not None else flatten(b.get("InputObject"))
    if b.has("Skip"):
        items = items[int(b.get("Skip")):]
    if b.has("First"):
        items = items[: int(b.get("First"))]
    if b.has("Last"):
        items = items[-int(b.get("Last")):]
    if b.has("ExpandProperty"):
        name = to_str(b.get("ExpandProperty"))
        out = []
        for it in items:
            if isinstance(it, PSObject) and not it.has_ci(name):
                ps.error(f"Property \"{name}\" cannot be found.", command="Select-Object",
                         category=f"InvalidArgument: ({to_str(it)}:PSObject) [Select-Object], "
                                  "PSArgumentException", fqid="ExpandPropertyNotFound")
                continue
            out.extend(flatten(get_property(it, name)))
        return out
    props = [to_str(p) for p in flatten(b.get("Property"))]
    if props and props != ["*"]:
        items = [PSObject("Selected", {_prop_name(it, p): get_property(it, _prop_name(it, p)) for p in props})
                 for it in items]
    if b.get("Unique"):
        seen, unique = set(), []
        for it in items:
            key = json.dumps(it, default=str, sort_keys=True) if isinstance(it, dict) else to_str(it)
            if key not in seen:
                seen.add(key)
                unique.append(it)
        items = unique
    return items


CMDLETS["select-object"].params = ("Property", "ExpandProperty", "First", "Last", "Skip", "InputObject")


def _prop_name(item: Any, pattern: str) -> str:
    if isinstance(item, dict):
        for k in item:
            if k.lower() == pattern.lower():
                return str(k)
    return pattern


@cmdlet("Where-Object", params=("FilterScript", "EQ", "NE", "Like", "NotLike", "Match", "GT", "LT"),
        pipeline="InputObject", aliases=("where", "?"), param_aliases={"property": "FilterScript"})
def where_object(ps: PowerShell, b: Bound) -> list[Any]:
    """``Where-Object { $_.X -eq 1 }`` or the simplified ``Where-Object X -eq 1``."""
    items = flatten(b.input) if b.input is not None else []
    block = b.get("FilterScript")
    out = []
    for op in ("EQ", "NE", "Like", "NotLike", "Match", "GT", "LT"):
        if b.has(op):
            value = b.get(op)
            prop = to_str(block)
            return [it for it in items if truthy(ps.binary(op.lower(), get_property(it, prop), value))]
    for it in items:
        if isinstance(block, pp.ScriptBlock):
            if truthy(ps.run_block(block, it)):
                out.append(it)
        elif truthy(get_property(it, to_str(block))):
            out.append(it)
    return out


@cmdlet("ForEach-Object", params=("Process",), pipeline="InputObject", aliases=("%", "foreach"),
        param_aliases={"membername": "MemberName"})
def foreach_object(ps: PowerShell, b: Bound) -> list[Any]:
    items = flatten(b.input) if b.input is not None else []
    block = b.get("Process")
    out: list[Any] = []
    for it in items:
        if isinstance(block, pp.ScriptBlock):
            out.extend(ps.run_block(block, it))
        else:
            out.extend(flatten(get_property(it, to_str(block))))
    return out


@cmdlet("Sort-Object", params=("Property",), switches=("Descending", "Unique"), pipeline="InputObject",
        aliases=("sort",))
def sort_object(ps: PowerShell, b: Bound) -> list[Any]:
    items = flatten(b.input) if b.input is not None else []
    prop = b.get("Property")

    def key(it: Any) -> Any:
        v = get_property(it, to_str(prop)) if prop is not None else it
        return (0, v) if isinstance(v, (int, float)) else (1, to_str(v).lower())

    out = sorted(items, key=key, reverse=bool(b.get("Descending")))
    if b.get("Unique"):
        out = list({to_str(x): x for x in out}.values())
    return out


@cmdlet("Measure-Object", params=("Property",), switches=("Sum", "Average", "Maximum", "Minimum"),
        pipeline="InputObject", aliases=("measure",))
def measure_object(ps: PowerShell, b: Bound) -> list[Any]:
    items = flatten(b.input) if b.input is not None else []
    result: dict[str, Any] = {"Count": len(items)}
    if b.has("Property"):
        values = [float(get_property(i, to_str(b.get("Property"))) or 0) for i in items]
        result.update({"Sum": sum(values), "Average": sum(values) / len(values) if values else None,
                       "Maximum": max(values, default=None), "Minimum": min(values, default=None)})
    return [PSObject("GenericMeasureInfo", result)]


@cmdlet("ConvertTo-Json", params=("InputObject",), switches=("Compress",), pipeline="InputObject",
        param_aliases={"depth": "Depth"})
def convertto_json(ps: PowerShell, b: Bound) -> list[Any]:
    value = b.get("InputObject")
    return [to_json(value, int(b.get("Depth", 2)), bool(b.get("Compress")))]


CMDLETS["convertto-json"].params = ("InputObject", "Depth")


@cmdlet("ConvertFrom-Json", params=("InputObject",), pipeline="InputObject")
def convertfrom_json(ps: PowerShell, b: Bound) -> list[Any]:
    text = "".join(to_str(x) for x in flatten(b.get("InputObject")))

    def conv(v: Any) -> Any:
        if isinstance(v, dict):
            return PSObject("PSCustomObject", {k: conv(x) for k, x in v.items()})
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    try:
        return flatten(conv(json.loads(text)))
    except ValueError as exc:
        ps.error(f"Invalid JSON primitive: {exc}", command="ConvertFrom-Json", fqid="System.ArgumentException")
        return []


@cmdlet("Get-Date", params=("Date",), switches=("UFormat",), param_aliases={"format": "Format"})
def get_date(ps: PowerShell, b: Bound) -> list[Any]:
    now = datetime.datetime.now()
    fmt = b.get("Format")
    if fmt is not None:
        py = to_str(fmt)
        for a, c in (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S")):
            py = py.replace(a, c)
        return [now.strftime(py)]
    return [now]


CMDLETS["get-date"].params = ("Date", "Format")


# environment --------------------------------------------------------------------------------------
@cmdlet("Set-ExecutionPolicy", params=("ExecutionPolicy",), switches=("Force",), param_aliases={"scope": "Scope"})
def set_execution_policy(ps: PowerShell, b: Bound) -> list[Any]:
    return []


CMDLETS["set-executionpolicy"].params = ("ExecutionPolicy", "Scope")


@cmdlet("Set-StrictMode", params=("Version",), switches=("Off",))
def set_strict_mode(ps: PowerShell, b: Bound) -> list[Any]:
    return []


@cmdlet("Start-Sleep", params=("Seconds",), param_aliases={"s": "Seconds", "milliseconds": "Milliseconds",
                                                             "ms": "Milliseconds"}, aliases=("sleep",))
def start_sleep(ps: PowerShell, b: Bound) -> list[Any]:
    seconds = float(b.get("Seconds") or 0) + float(b.get("Milliseconds") or 0) / 1000
    sleep_scaled(ps.ctx, seconds)
    return []


CMDLETS["start-sleep"].params = ("Seconds", "Milliseconds")


@cmdlet("Invoke-Expression", params=("Command",), aliases=("iex",), pipeline="Command")
def invoke_expression(ps: PowerShell, b: Bound) -> list[Any]:
    body = pp.parse(to_str(b.get("Command")))
    return ps.exec_block(body)


@cmdlet("Get-Command", params=("Name",), switches=("All",), aliases=("gcm",))
def get_command(ps: PowerShell, b: Bound) -> list[Any]:
    out = []
    for name in [to_str(n) for n in _items(b, "Name")]:
        low = name.lower()
        if low in CMDLETS or low in ps.functions:
            out.append(PSObject("Command", {"CommandType": "Cmdlet", "Name": name, "Version": "3.1.0.0",
                                            "Source": "Microsoft.PowerShell.Management"}))
        elif find_native(ps.ctx, name) is not None:
            out.append(PSObject("Command", {"CommandType": "Application", "Name": name + ".exe",
                                            "Version": "10.0.20348.1", "Source": rf"C:\Windows\system32\{name}.exe"}))
        else:
            ps.error(f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable "
                     "program.", command="Get-Command", category=f"ObjectNotFound: ({name}:String) [Get-Command], "
                     "CommandNotFoundException", fqid="CommandNotFoundException")
    return out


# registry and files -------------------------------------------------------------------------------
def _registry_object(key: str, values: dict[str, Any]) -> PSObject:
    canonical = reg_key(key)
    hive, _, _rest = canonical.partition("\\")
    parent, _, child = canonical.rpartition("\\")
    props = dict(values)
    props.update({"PSPath": f"Microsoft.PowerShell.Core\\Registry::{canonical}",
                  "PSParentPath": f"Microsoft.PowerShell.Core\\Registry::{parent}", "PSChildName": child,
                  "PSDrive": "HKLM" if hive == "HKEY_LOCAL_MACHINE" else "HKCU",
                  "PSProvider": "Microsoft.PowerShell.Core\\Registry"})
    return PSObject("ItemProperty", props)


def _not_found(ps: PowerShell, path: str, command: str) -> None:
    ps.error(f"Cannot find path '{path}' because it does not exist.", command=command,
             category=f"ObjectNotFound: ({path}:String) [{command}], ItemNotFoundException",
             fqid=f"PathNotFound,Microsoft.PowerShell.Commands.{command.replace('-', '')}Command")


@cmdlet("Get-ItemProperty", params=("Path", "Name"), aliases=("gp",), param_aliases={"literalpath": "Path"})
def get_item_property(ps: PowerShell, b: Bound) -> list[Any]:
    out = []
    for path in [to_str(p) for p in flatten(b.get("Path"))]:
        if not is_registry(path):
            if not file_exists(ps.ctx, win_path(ps.ctx, path)):
                _not_found(ps, path, "Get-ItemProperty")
            else:
                out.append(PSObject("FileInfo", {"FullName": win_path(ps.ctx, path)}))
            continue
        values = reg_read(ps.ctx.system, path)
        if values is None:
            _not_found(ps, path, "Get-ItemProperty")
            continue
        names = [to_str(n) for n in flatten(b.get("Name"))]
        if names:
            picked = {k: v for k, v in values.items() if any(fnmatch.fnmatch(k.lower(), n.lower()) for n in names)}
            if not picked:
                ps.error(f"Property {names[0]} does not exist at path {reg_key(path)}.", command="Get-ItemProperty",
                         category="InvalidArgument", fqid="System.Management.Automation.PSArgumentException")
                continue
            values = picked
        out.append(_registry_object(path, values))
    return out


@cmdlet("Get-ItemPropertyValue", params=("Path", "Name"), aliases=("gpv",))
def get_item_property_value(ps: PowerShell, b: Bound) -> list[Any]:
    path = to_str(b.get("Path"))
    values = reg_read(ps.ctx.system, path) if is_registry(path) else None
    if values is None:
        _not_found(ps, path, "Get-ItemPropertyValue")
        return []
    out = []
    for name in [to_str(n) for n in flatten(b.get("Name"))]:
        hit = next((v for k, v in values.items() if k.lower() == name.lower()), None)
        if hit is None:
            ps.error(f"Property {name} does not exist at path {reg_key(path)}.", command="Get-ItemPropertyValue",
                     category="InvalidArgument", fqid="System.Management.Automation.PSArgumentException")
        else:
            out.append(hit)
    return out


@cmdlet("Set-ItemProperty", params=("Path", "Name", "Value"), switches=("Force", "PassThru"), aliases=("sp",),
        param_aliases={"type": "Type", "propertytype": "Type"})
def set_item_property(ps: PowerShell, b: Bound) -> list[Any]:
    path = to_str(b.get("Path"))
    if not ps.ctx.admin and path.lower().startswith("hklm"):
        ps.error("Requested registry access is not allowed.", command="Set-ItemProperty",
                 category="PermissionDenied", fqid="System.Security.SecurityException")
        return []
    if not is_registry(path) or reg_read(ps.ctx.system, path) is None:
        _not_found(ps, path, "Set-ItemProperty")
        return []
    reg_write(ps.ctx.system, path, to_str(b.get("Name")), b.get("Value"))
    ps.ctx.hooks.changed()
    return []


CMDLETS["set-itemproperty"].params = ("Path", "Name", "Value", "Type")
CMDLETS["new-itemproperty"] = Cmdlet("New-ItemProperty", set_item_property, ("Path", "Name", "Value", "Type"),
                                     ("Force",), {"propertytype": "Type"})


@cmdlet("Test-Path", params=("Path",), switches=("IsValid",), param_aliases={"pathtype": "PathType",
                                                                              "literalpath": "Path"})
def test_path(ps: PowerShell, b: Bound) -> list[Any]:
    out = []
    for path in [to_str(p) for p in flatten(b.get("Path"))]:
        if is_registry(path):
            out.append(reg_read(ps.ctx.system, path) is not None)
        else:
            out.append(file_exists(ps.ctx, win_path(ps.ctx, path)))
    return out


CMDLETS["test-path"].params = ("Path", "PathType")


@cmdlet("New-Item", params=("Path",), switches=("Force",), aliases=("ni", "md", "mkdir"),
        param_aliases={"itemtype": "ItemType", "type": "ItemType", "value": "Value", "name": "Name"})
def new_item(ps: PowerShell, b: Bound) -> list[Any]:
    path = to_str(b.get("Path"))
    if b.has("Name"):
        path = path.rstrip("\\") + "\\" + to_str(b.get("Name"))
    if is_registry(path):
        reg_write(ps.ctx.system, path, None, None)
        ps.ctx.hooks.changed()
        return [PSObject("RegistryKey", {"Name": reg_key(path).rsplit("\\", 1)[-1], "Property": ""})]
    full = win_path(ps.ctx, path)
    kind = to_str(b.get("ItemType", "File")).lower()
    if file_exists(ps.ctx, full) and not b.get("Force"):
        ps.error(f"An item with the specified name {full} already exists.", command="New-Item",
                 category=f"ResourceExists: ({full}:String) [New-Item], IOException",
                 fqid="DirectoryExist,Microsoft.PowerShell.Commands.NewItemCommand")
        return []
    if kind == "directory" or (b.has("ItemType") is False and ps.current_text.lower().startswith(("md ", "mkdir "))):
        dirs = ps.ctx.system.os.setdefault("dirs", [])
        parts = full.split("\\")
        for i in range(2, len(parts) + 1):
            d = "\\".join(parts[:i]).lower()
            if d not in dirs:
                dirs.append(d)
        ps.ctx.hooks.changed()
        return [PSObject("DirectoryInfo", {"Mode": "d-----", "LastWriteTime": datetime.datetime.now()
                                           .strftime("%m/%d/%Y %I:%M %p"), "Length": "", "Name": parts[-1]})]
    _write_file(ps, path, to_str(b.get("Value")) if b.has("Value") else "", append=False, command="New-Item")
    return [PSObject("FileInfo", {"Mode": "-a----", "LastWriteTime": datetime.datetime.now()
                                  .strftime("%m/%d/%Y %I:%M %p"), "Length": len(to_str(b.get("Value") or "")),
                                  "Name": full.rsplit("\\", 1)[-1]})]


CMDLETS["new-item"].params = ("Path", "ItemType", "Value", "Name")


def _write_file(ps: PowerShell, path: str, text: str, *, append: bool, command: str) -> list[Any]:
    try:
        file_write(ps.ctx, win_path(ps.ctx, path), text, append=append)
    except (FileNotFoundError, PermissionError) as exc:
        ps.error(str(exc), command=command, category="WriteError", fqid=f"{type(exc).__name__},{command}")
        return []
    ps.ctx.hooks.changed()
    return []


@cmdlet("Set-Content", params=("Path", "Value"), switches=("Force", "NoNewline"), pipeline="Value",
        param_aliases={"encoding": "Encoding"}, aliases=("sc",))
def set_content(ps: PowerShell, b: Bound) -> list[Any]:
    text = CRLF.join(to_str(x) for x in flatten(b.get("Value"))) + ("" if b.get("NoNewline") else CRLF)
    return _write_file(ps, to_str(b.get("Path")), text, append=False, command="Set-Content")


@cmdlet("Add-Content", params=("Path", "Value"), switches=("Force", "NoNewline"), pipeline="Value",
        param_aliases={"encoding": "Encoding"}, aliases=("ac",))
def add_content(ps: PowerShell, b: Bound) -> list[Any]:
    text = CRLF.join(to_str(x) for x in flatten(b.get("Value"))) + ("" if b.get("NoNewline") else CRLF)
    return _write_file(ps, to_str(b.get("Path")), text, append=True, command="Add-Content")


CMDLETS["set-content"].params = ("Path", "Value", "Encoding")
CMDLETS["add-content"].params = ("Path", "Value", "Encoding")


@cmdlet("Get-Content", params=("Path",), switches=("Raw",), aliases=("gc", "cat", "type"),
        param_aliases={"tail": "Tail", "totalcount": "TotalCount", "encoding": "Encoding", "literalpath": "Path"})
def get_content(ps: PowerShell, b: Bound) -> list[Any]:
    path = to_str(b.get("Path"))
    text = file_read(ps.ctx, win_path(ps.ctx, path))
    if text is None:
        _not_found(ps, path, "Get-Content")
        return []
    if b.get("Raw"):
        return [text]
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if b.has("Tail"):
        lines = lines[-int(b.get("Tail")):]
    if b.has("TotalCount"):
        lines = lines[: int(b.get("TotalCount"))]
    return list(lines)


CMDLETS["get-content"].params = ("Path", "Tail", "TotalCount", "Encoding")


@cmdlet("Remove-Item", params=("Path",), switches=("Recurse", "Force"), aliases=("rm", "del", "ri", "rmdir", "rd"),
        param_aliases={"literalpath": "Path"})
def remove_item(ps: PowerShell, b: Bound) -> list[Any]:
    for path in [to_str(p) for p in flatten(b.get("Path"))]:
        full = win_path(ps.ctx, path).lower()
        files = ps.ctx.system.os.setdefault("files", {})
        dirs = ps.ctx.system.os.setdefault("dirs", [])
        hits = [f for f in files if f == full or f.startswith(full + "\\") or fnmatch.fnmatch(f, full)]
        dir_hits = [d for d in dirs if d == full or d.startswith(full + "\\")]
        if not hits and not dir_hits:
            _not_found(ps, path, "Remove-Item")
            continue
        for f in hits:
            del files[f]
        for d in dir_hits:
            dirs.remove(d)
    ps.ctx.hooks.changed()
    return []


@cmdlet("Get-ChildItem", params=("Path",), switches=("Recurse", "Force", "File", "Directory"),
        aliases=("gci", "ls", "dir"), param_aliases={"filter": "Filter"})
def get_child_item(ps: PowerShell, b: Bound) -> list[Any]:
    base = win_path(ps.ctx, to_str(b.get("Path") or ".")).lower().rstrip("\\")
    files = ps.ctx.system.os.setdefault("files", {})
    names = sorted({f[len(base) + 1:].split("\\")[0] for f in files if f.startswith(base + "\\")})
    out = [PSObject("FileInfo", {"Mode": "-a----", "LastWriteTime": "", "Length": "", "Name": n}) for n in names]
    return out


CMDLETS["get-childitem"].params = ("Path", "Filter")


# the machine --------------------------------------------------------------------------------------
@cmdlet("Get-HotFix", params=("Id",), param_aliases={"hotfixid": "Id", "computername": "ComputerName"})
def get_hotfix(ps: PowerShell, b: Bound) -> list[Any]:
    ids = [to_str(i).lower() for i in flatten(b.get("Id"))]
    out = []
    for h in ps.ctx.system.hotfixes:
        if ids and h["HotFixID"].lower() not in ids:
            continue
        out.append(PSObject("HotFix", {"Source": ps.ctx.system.computer_name.upper(), "Description": h["Description"],
                                       "HotFixID": h["HotFixID"], "InstalledBy": "NT AUTHORITY\\SYSTEM",
                                       "InstalledOn": h["InstalledOn"] + " 12:00:00 AM"}))
    if ids and not out:
        ps.error(f"Cannot find the requested hotfix on the '{ps.ctx.system.computer_name}' computer. Verify the input "
                 "and run the command again.", command="Get-HotFix", category="ObjectNotFound",
                 fqid="GetHotFixNoEntriesFound,Microsoft.PowerShell.Commands.GetHotFixCommand")
    return out


CMDLETS["get-hotfix"].params = ("Id", "ComputerName")


def _feature(ps: PowerShell, name: str) -> PSObject:
    installed = name in ps.ctx.system.features
    return PSObject("Feature", {"DisplayName": catalog.WINDOWS_FEATURES.get(name, name), "Name": name,
                                "InstallState": "Installed" if installed else "Available", "Installed": installed,
                                "FeatureType": "Role Service"})


@cmdlet("Get-WindowsFeature", params=("Name",))
def get_windows_feature(ps: PowerShell, b: Bound) -> list[Any]:
    patterns = [to_str(n) for n in _items(b, "Name")] or ["*"]
    names = [n for n in catalog.WINDOWS_FEATURES if any(fnmatch.fnmatch(n.lower(), p.lower()) for p in patterns)]
    return [_feature(ps, n) for n in names]


@cmdlet("Install-WindowsFeature", params=("Name",), switches=("IncludeManagementTools", "IncludeAllSubFeature",
                                                              "Restart"), aliases=("add-windowsfeature",))
def install_windows_feature(ps: PowerShell, b: Bound) -> list[Any]:
    if not ps.ctx.admin:
        ps.error("The request to add or remove features on the specified server failed. Access is denied.",
                 command="Install-WindowsFeature", category="PermissionDenied", fqid="UnAuthorizedAccessException")
        return []
    names = [to_str(n) for n in _items(b, "Name")]
    unknown = [n for n in names if n not in catalog.WINDOWS_FEATURES]
    if unknown:
        ps.error(f"ArgumentNotValid: The role, role service, or feature name is not valid: '{unknown[0]}'. The name "
                 "was not found.", command="Install-WindowsFeature", category="InvalidArgument",
                 fqid="NameDoesNotExist,Microsoft.Windows.ServerManager.Commands.AddWindowsFeatureCommand")
        return []
    sleep_scaled(ps.ctx, 30.0 * len(names))
    added: list[str] = []
    with ps.ctx.hooks.lock:
        for n in names:
            added += ps.ctx.system.install_feature(n)
    ps.ctx.hooks.changed()
    result = ", ".join(catalog.WINDOWS_FEATURES[n] for n in added) or "{}"
    return [PSObject("FeatureResult", {"Success": True, "Restart Needed": "No",
                                       "Exit Code": "Success" if added else "NoChangeNeeded",
                                       "Feature Result": "{" + result + "}" if added else "{}"})]


@cmdlet("Uninstall-WindowsFeature", params=("Name",), switches=("Remove", "Restart"),
        aliases=("remove-windowsfeature",))
def uninstall_windows_feature(ps: PowerShell, b: Bound) -> list[Any]:
    removed = []
    with ps.ctx.hooks.lock:
        for n in [to_str(x) for x in _items(b, "Name")]:
            if n in ps.ctx.system.features:
                ps.ctx.system.features.remove(n)
                removed.append(n)
    ps.ctx.hooks.changed()
    return [PSObject("FeatureResult", {"Success": True, "Restart Needed": "Yes" if removed else "No",
                                       "Exit Code": "SuccessRestartRequired" if removed else "NoChangeNeeded",
                                       "Feature Result": "{" + ", ".join(removed) + "}"})]


def _service_obj(name: str, svc: dict[str, Any]) -> PSObject:
    return PSObject("Service", {"Status": "Running" if svc.get("running") else "Stopped", "Name": name,
                                "DisplayName": svc.get("display", name), "StartType": svc.get("start", "Manual")})


@cmdlet("Get-Service", params=("Name",), aliases=("gsv",))
def get_service(ps: PowerShell, b: Bound) -> list[Any]:
    services = ps.ctx.system.os["services"]
    patterns = [to_str(n) for n in _items(b, "Name")] or ["*"]
    out = []
    for p in patterns:
        hits = [n for n in services if fnmatch.fnmatch(n.lower(), p.lower())]
        if not hits:
            ps.error(f"Cannot find any service with service name '{p}'.", command="Get-Service",
                     category=f"ObjectNotFound: ({p}:String) [Get-Service], ServiceCommandException",
                     fqid="NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand")
        out += [_service_obj(n, services[n]) for n in sorted(hits)]
    return out


def _service_change(ps: PowerShell, b: Bound, command: str, running: bool | None, start: str | None) -> list[Any]:
    services = ps.ctx.system.os["services"]
    names = [to_str(get_property(n, "Name") if isinstance(n, PSObject) else n) for n in _items(b, "Name")]
    for n in names:
        key = next((k for k in services if k.lower() == n.lower()), None)
        if key is None:
            ps.error(f"Cannot find any service with service name '{n}'.", command=command, category="ObjectNotFound",
                     fqid=f"NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.{command.replace('-', '')}Command")
            continue
        if not ps.ctx.admin:
            ps.error(f"Service '{key}' cannot be configured due to the following error: Access is denied",
                     command=command, category="PermissionDenied", fqid="CouldNotSetService")
            continue
        if running is not None:
            services[key]["running"] = running
        if start is not None:
            services[key]["start"] = start
    ps.ctx.hooks.changed()
    return []


@cmdlet("Start-Service", params=("Name",), switches=("PassThru",), pipeline="Name", aliases=("sasv",))
def start_service(ps: PowerShell, b: Bound) -> list[Any]:
    return _service_change(ps, b, "Start-Service", True, None)


@cmdlet("Stop-Service", params=("Name",), switches=("Force", "PassThru"), pipeline="Name", aliases=("spsv",))
def stop_service(ps: PowerShell, b: Bound) -> list[Any]:
    return _service_change(ps, b, "Stop-Service", False, None)


@cmdlet("Restart-Service", params=("Name",), switches=("Force", "PassThru"), pipeline="Name")
def restart_service(ps: PowerShell, b: Bound) -> list[Any]:
    return _service_change(ps, b, "Restart-Service", True, None)


@cmdlet("Set-Service", params=("Name",), switches=("PassThru",), pipeline="Name",
        param_aliases={"startuptype": "StartupType", "status": "Status"})
def set_service(ps: PowerShell, b: Bound) -> list[Any]:
    status = b.get("Status")
    running = None if status is None else to_str(status).lower() == "running"
    start = to_str(b.get("StartupType")) if b.has("StartupType") else None
    return _service_change(ps, b, "Set-Service", running, start)


CMDLETS["set-service"].params = ("Name", "StartupType", "Status")


def _os_info(ps: PowerShell) -> PSObject:
    os = ps.ctx.system.os
    rel = catalog.WINDOWS[os["image"]]
    return PSObject("Win32_OperatingSystem", {
        "Caption": rel.caption, "Version": f"10.0.{os['build']}", "BuildNumber": str(os["build"]),
        "OSArchitecture": "64-bit", "CSName": ps.ctx.system.computer_name.upper(),
        "Manufacturer": "Microsoft Corporation", "Description": SIMULATED,
    })


@cmdlet("Get-CimInstance", params=("ClassName",), aliases=("get-wmiobject", "gwmi", "gcim"),
        param_aliases={"class": "ClassName", "namespace": "Namespace", "filter": "Filter"})
def get_cim_instance(ps: PowerShell, b: Bound) -> list[Any]:
    cls = to_str(b.get("ClassName")).lower()
    system = ps.ctx.system
    if cls == "win32_operatingsystem":
        return [_os_info(ps)]
    if cls == "win32_computersystem":
        return [PSObject("Win32_ComputerSystem", {"Name": system.computer_name.upper(), "Domain": "WORKGROUP",
                                                  "Manufacturer": "Microsoft Corporation",
                                                  "Model": "Virtual Machine", "PartOfDomain": False})]
    if cls == "win32_quickfixengineering":
        return get_hotfix(ps, Bound({}, [], None))
    ps.error(f"Invalid class \"{cls}\" {SIMULATED}", command="Get-CimInstance", category="ObjectNotFound",
             fqid="HRESULT 0x80041010,Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand")
    return []


CMDLETS["get-ciminstance"].params = ("ClassName", "Namespace", "Filter")


@cmdlet("Get-ComputerInfo", params=("Property",))
def get_computer_info(ps: PowerShell, b: Bound) -> list[Any]:
    os = ps.ctx.system.os
    rel = catalog.WINDOWS[os["image"]]
    info = PSObject("ComputerInfo", {"WindowsProductName": rel.caption.replace("Microsoft ", ""),
                                     "WindowsVersion": "2009", "OsName": rel.caption,
                                     "OsVersion": f"10.0.{os['build']}", "OsBuildNumber": str(os["build"]),
                                     "CsName": ps.ctx.system.computer_name.upper(), "OsHotFixes":
                                         [h["HotFixID"] for h in ps.ctx.system.hotfixes]})
    props = [to_str(p) for p in flatten(b.get("Property"))]
    if props:
        info = PSObject("ComputerInfo", {k: v for k, v in info.items()
                                         if any(fnmatch.fnmatch(k.lower(), p.lower()) for p in props)})
    return [info]


@cmdlet("Get-Package", params=("Name",), param_aliases={"providername": "ProviderName"})
def get_package(ps: PowerShell, b: Bound) -> list[Any]:
    patterns = [to_str(n) for n in _items(b, "Name")] or ["*"]
    out = []
    for name, version in sorted(ps.ctx.system.os.get("software", {}).items()):
        if any(fnmatch.fnmatch(name.lower(), p.lower()) for p in patterns):
            out.append(PSObject("Package", {"Name": name, "Version": version, "Source": "", "ProviderName": "Programs"}))
    for h in ps.ctx.system.hotfixes:
        if any(fnmatch.fnmatch(h["HotFixID"].lower(), p.lower()) for p in patterns):
            out.append(PSObject("Package", {"Name": h["HotFixID"], "Version": "", "Source": "",
                                            "ProviderName": "msu"}))
    return out


CMDLETS["get-package"].params = ("Name", "ProviderName")


@cmdlet("Get-LocalUser", params=("Name",), aliases=("glu",))
def get_local_user(ps: PowerShell, b: Bound) -> list[Any]:
    names = [to_str(n) for n in _items(b, "Name")]
    out = []
    for name, u in ps.ctx.system.users.items():
        if names and not any(fnmatch.fnmatch(name.lower(), n.lower()) for n in names):
            continue
        out.append(PSObject("LocalUser", {"Name": name, "Enabled": bool(u.get("enabled")),
                                          "Description": "Built-in account for administering the computer/domain"
                                          if name == "Administrator" else ""}))
    if names and not out:
        ps.error(f"User {names[0]} was not found.", command="Get-LocalUser",
                 category=f"ObjectNotFound: ({names[0]}:String) [Get-LocalUser], UserNotFoundException",
                 fqid="UserNotFound,Microsoft.PowerShell.Commands.GetLocalUserCommand")
    return out


# modules and updates ------------------------------------------------------------------------------
BUILTIN_MODULES = {"servermanager", "microsoft.powershell.management", "microsoft.powershell.utility", "cimcmdlets",
                   "packagemanagement", "powershellget", "netsecurity", "international"}
GALLERY = {"pswindowsupdate": ("PSWindowsUpdate", "2.2.1.4")}


@cmdlet("Install-PackageProvider", params=("Name",), switches=("Force",),
        param_aliases={"minimumversion": "MinimumVersion", "scope": "Scope"})
def install_package_provider(ps: PowerShell, b: Bound) -> list[Any]:
    return [PSObject("PackageProvider", {"Name": to_str(b.get("Name")), "Version": "2.8.5.208",
                                         "Source": "https://onegetcdn.azureedge.net/providers/"})]


CMDLETS["install-packageprovider"].params = ("Name", "MinimumVersion", "Scope")


@cmdlet("Set-PSRepository", params=("Name",), param_aliases={"installationpolicy": "InstallationPolicy"})
def set_ps_repository(ps: PowerShell, b: Bound) -> list[Any]:
    return []


CMDLETS["set-psrepository"].params = ("Name", "InstallationPolicy")


@cmdlet("Install-Module", params=("Name",), switches=("Force", "AllowClobber", "SkipPublisherCheck"),
        param_aliases={"scope": "Scope", "repository": "Repository", "requiredversion": "RequiredVersion"})
def install_module(ps: PowerShell, b: Bound) -> list[Any]:
    for name in [to_str(n) for n in _items(b, "Name")]:
        if name.lower() not in GALLERY:
            ps.error(f"No match was found for the specified search criteria and module name '{name}'. Try "
                     f"Get-PSRepository to see all available registered module repositories. {SIMULATED}",
                     command="PackageManagement\\Install-Package", category="ObjectNotFound",
                     fqid="NoMatchFoundForCriteria,Microsoft.PowerShell.PackageManagement.Cmdlets.InstallPackage")
            continue
        sleep_scaled(ps.ctx, 10)
        modules = ps.ctx.system.os.setdefault("modules", [])
        if name.lower() not in modules:
            modules.append(name.lower())
    ps.ctx.hooks.changed()
    return []


CMDLETS["install-module"].params = ("Name", "Scope", "Repository", "RequiredVersion")


@cmdlet("Import-Module", params=("Name",), switches=("Force",))
def import_module(ps: PowerShell, b: Bound) -> list[Any]:
    for name in [to_str(n) for n in _items(b, "Name")]:
        if name.lower() not in BUILTIN_MODULES and name.lower() not in ps.ctx.system.os.get("modules", []):
            ps.error(f"The specified module '{name}' was not loaded because no valid module file was found in any "
                     "module directory.", command="Import-Module",
                     category=f"ResourceUnavailable: ({name}:String) [Import-Module], FileNotFoundException",
                     fqid="Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand")
    return []


def _need_module(ps: PowerShell, command: str) -> bool:
    if "pswindowsupdate" in ps.ctx.system.os.get("modules", []):
        return True
    ps.error(f"The term '{command}' is not recognized as the name of a cmdlet, function, script file, or operable "
             f"program. Check the spelling of the name, or if a path was included, verify that the path is correct "
             f"and try again. {SIMULATED}", command=command,
             category=f"ObjectNotFound: ({command}:String) [], CommandNotFoundException",
             fqid="CommandNotFoundException")
    return False


def _update_rows(ps: PowerShell, updates: list[dict[str, str]], status: str) -> list[Any]:
    return [PSObject("WindowsUpdate", {"ComputerName": ps.ctx.system.computer_name.upper(), "Status": status,
                                       "KB": u["HotFixID"], "Size": "24MB",
                                       "Title": f"{u['Description']} for {catalog.WINDOWS[ps.ctx.system.os['image']]}"
                                       .replace("WindowsRelease", "Microsoft server operating system")})
            for u in updates]


@cmdlet("Get-WindowsUpdate", params=(), switches=("AcceptAll", "Install", "IgnoreReboot", "AutoReboot",
                                                  "MicrosoftUpdate"))
def get_windows_update(ps: PowerShell, b: Bound) -> list[Any]:
    if not _need_module(ps, "Get-WindowsUpdate"):
        return []
    if b.get("Install"):
        return install_windows_update(ps, b)
    return _update_rows(ps, ps.ctx.system.pending_updates(ps.ctx.hooks.archive_serial()), "-------")


@cmdlet("Install-WindowsUpdate", params=(), switches=("AcceptAll", "IgnoreReboot", "AutoReboot", "MicrosoftUpdate",
                                                      "Install"))
def install_windows_update(ps: PowerShell, b: Bound) -> list[Any]:
    if not _need_module(ps, "Install-WindowsUpdate"):
        return []
    if not ps.ctx.admin:
        ps.error("Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))",
                 command="Install-WindowsUpdate", category="PermissionDenied", fqid="AccessDenied")
        return []
    pending = ps.ctx.system.pending_updates(ps.ctx.hooks.archive_serial())
    if pending:
        sleep_scaled(ps.ctx, 300.0)
    with ps.ctx.hooks.lock:
        installed = ps.ctx.system.install_updates(ps.ctx.hooks.archive_serial())
    ps.ctx.hooks.changed()
    if installed and b.get("AutoReboot"):
        ps.ctx.hooks.power("reboot")
    return _update_rows(ps, installed, "Installed")


# power ----------------------------------------------------------------------------------------------
@cmdlet("Stop-Computer", params=("ComputerName",), switches=("Force",))
def stop_computer(ps: PowerShell, b: Bound) -> list[Any]:
    return _power(ps, "poweroff", "Stop-Computer")


@cmdlet("Restart-Computer", params=("ComputerName",), switches=("Force", "Wait"))
def restart_computer(ps: PowerShell, b: Bound) -> list[Any]:
    return _power(ps, "reboot", "Restart-Computer")


def _power(ps: PowerShell, action: str, command: str) -> list[Any]:
    if not ps.ctx.admin:
        ps.error(f"Privilege not held. {SIMULATED}", command=command, category="PermissionDenied",
                 fqid=f"InvalidOperationException,Microsoft.PowerShell.Commands.{command.replace('-', '')}Command")
        return []
    ps.ctx.hooks.power(action)
    return []


@cmdlet("Start-Process", params=("FilePath", "ArgumentList"), switches=("Wait", "NoNewWindow", "PassThru"),
        aliases=("saps", "start"), param_aliases={"verb": "Verb", "windowstyle": "WindowStyle",
                                                  "workingdirectory": "WorkingDirectory",
                                                  "redirectstandardoutput": "RedirectStandardOutput"})
def start_process(ps: PowerShell, b: Bound) -> list[Any]:
    path = to_str(b.get("FilePath"))
    args: list[str] = []
    for a in flatten(b.get("ArgumentList")):
        args.extend(to_str(a).split())
    base = path.replace("/", "\\").rsplit("\\", 1)[-1].lower()
    if base in ("sysprep", "sysprep.exe"):
        code, done = start_sysprep(ps.ctx, args)
        if b.get("Wait") and done is not None:
            with ps.ctx.hooks.lock.released():
                while not done.wait(0.2):
                    wait(0, ps.ctx.cancel)
        return [PSObject("Process", {"Id": 4242, "ProcessName": "sysprep", "ExitCode": code})] \
            if b.get("PassThru") else []
    prog = find_native(ps.ctx, path)
    if prog is None:
        ps.error("This command cannot be run due to the error: The system cannot find the file specified.",
                 command="Start-Process", category="InvalidOperation: (:) [Start-Process], InvalidOperationException",
                 fqid="InvalidOperationException,Microsoft.PowerShell.Commands.StartProcessCommand")
        return []
    code, out = prog(ps.ctx, [path, *args])
    if b.get("NoNewWindow") and out:
        ps.ctx.out.write(out)
    return [PSObject("Process", {"Id": 4243, "ProcessName": base.removesuffix(".exe"), "ExitCode": code})] \
        if b.get("PassThru") else []


CMDLETS["start-process"].params = ("FilePath", "ArgumentList", "Verb", "WindowStyle", "WorkingDirectory",
                                   "RedirectStandardOutput")


@cmdlet("Invoke-WebRequest", params=("Uri",), switches=("UseBasicParsing",), aliases=("iwr", "curl", "wget"),
        param_aliases={"outfile": "OutFile", "method": "Method", "headers": "Headers", "body": "Body"})
def invoke_web_request(ps: PowerShell, b: Bound) -> list[Any]:
    uri = to_str(b.get("Uri"))
    host = uri.split("://", 1)[-1].split("/", 1)[0].split(":")[0].lower()
    if host in ("localhost", "127.0.0.1") and ps.ctx.system.os["services"].get("W3SVC", {}).get("running"):
        content = file_read(ps.ctx, r"C:\inetpub\wwwroot\iisstart.htm") or ""
        return [PSObject("WebResponse", {"StatusCode": 200, "StatusDescription": "OK", "Content": content})]
    ps.error(f"The remote name could not be resolved: '{host}' (the simulated guest has no outbound network)",
             command="Invoke-WebRequest", category="InvalidOperation: (System.Net.HttpWebRequest:HttpWebRequest) "
             "[Invoke-WebRequest], WebException",
             fqid="WebCmdletWebResponseException,Microsoft.PowerShell.Commands.InvokeWebRequestCommand")
    return []


CMDLETS["invoke-webrequest"].params = ("Uri", "OutFile", "Method", "Headers", "Body")
CMDLETS["invoke-restmethod"] = CMDLETS["invoke-webrequest"]
