"""Simulated Windows command interpreters: ``powershell.exe`` (psparse's subset) and ``cmd.exe``.

What a WinRM ``Command`` or RunPowerShellScript runs. Output uses CRLF like the real shells;
``powershell -EncodedCommand`` (pywinrm's ``run_ps``) reports errors on stderr as CLIXML, as real
PowerShell does. Exit codes: ``exit N``; else 1 if the last statement failed, 0 otherwise; cmd.exe
reports 9009 for an unknown command. Everything a real Windows would do that this does not model
fails loudly, naming the simulated guest.
"""

from __future__ import annotations

import base64
import datetime
import fnmatch
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from emulator.guests.simulated import catalog
from emulator.guests.simulated import psparse as pp
from emulator.guests.simulated.session import Cancelled, GuestHooks, Input, Output, TextInput, hang, wait
from emulator.guests.simulated.windows import (
    GENERALIZED,
    STATE_KEY,
    SYSPREP_SECONDS,
    SYSPREP_SECONDS_SETTING,
    SysprepError,
    WindowsSystem,
)

CRLF = "\r\n"
SIMULATED = "(simulated guest)"
SYSTEM_USER = "SYSTEM"


class PSObject(dict):  # type: ignore[type-arg]
    """A PowerShell object: ordered properties plus a type name that picks its display format."""

    def __init__(self, type_name: str, props: dict[str, Any]) -> None:
        super().__init__(props)
        self.type_name = type_name

    def get_ci(self, name: str) -> Any:
        for k, v in self.items():
            if k.lower() == name.lower():
                return v
        return None

    def has_ci(self, name: str) -> bool:
        return any(k.lower() == name.lower() for k in self)


@dataclass
class ErrorRecord:
    message: str
    command: str = ""
    category: str = "NotSpecified"
    fqid: str = "NotSpecified"
    text: str = ""
    line: int = 1

    def render(self) -> str:
        head = f"{self.command} : {self.message}" if self.command else self.message
        lines = [head, f"At line:{self.line} char:1", f"+ {self.text}", "+ " + "~" * max(1, len(self.text)),
                 f"    + CategoryInfo          : {self.category}", f"    + FullyQualifiedErrorId : {self.fqid}"]
        return CRLF.join(lines) + CRLF


class PSError(Exception):
    """A terminating error (``throw``, ``-ErrorAction Stop``)."""

    def __init__(self, record: ErrorRecord) -> None:
        super().__init__(record.message)
        self.record = record


class PSExit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class PSFlow(Exception):
    def __init__(self, kind: str, value: Any = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.value = value


@dataclass
class WinContext:
    """One command's world: the machine, who runs it, and its streams."""

    system: WindowsSystem
    hooks: GuestHooks
    user: str
    cancel: threading.Event
    out: Output
    err: Output
    stdin: Input = field(default_factory=lambda: TextInput(""))
    cwd: str = ""

    def __post_init__(self) -> None:
        if not self.cwd:
            self.cwd = r"C:\Windows\system32" if self.user == SYSTEM_USER else rf"C:\Users\{self.user}"

    @property
    def admin(self) -> bool:
        return self.user == SYSTEM_USER or self.system.is_admin(self.user)

    def whoami(self) -> str:
        if self.user == SYSTEM_USER:
            return r"nt authority\system"
        return f"{self.system.computer_name.lower()}\\{self.user.lower()}"


# registry and files --------------------------------------------------------------------------
_HIVES = {"hklm": "HKEY_LOCAL_MACHINE", "hkcu": "HKEY_CURRENT_USER", "hkcr": "HKEY_CLASSES_ROOT",
          "hku": "HKEY_USERS"}


def is_registry(path: str) -> bool:
    low = path.lower()
    return bool(re.match(r"^(hk(lm|cu|cr|u):|registry::|microsoft\.powershell\.core\\registry::|hkey_)", low))


def reg_key(path: str) -> str:
    p = re.sub(r"^(microsoft\.powershell\.core\\)?registry::", "", path, flags=re.IGNORECASE)
    m = re.match(r"^(hk(?:lm|cu|cr|u)):?\\?", p, re.IGNORECASE)
    if m:
        p = _HIVES[m.group(1).lower()] + "\\" + p[m.end():]
    return p.replace("/", "\\").rstrip("\\")


def _builtin_keys(system: WindowsSystem) -> dict[str, dict[str, Any]]:
    os = system.os
    rel = catalog.WINDOWS[os["image"]]
    name = system.computer_name.upper()
    return {
        STATE_KEY: {"ImageState": system.image_state},
        r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion": {
            "ProductName": rel.caption.replace("Microsoft ", ""), "EditionID": "ServerDatacenter",
            "CurrentBuild": str(os["build"]), "CurrentBuildNumber": str(os["build"]), "UBR": int(os["ubr"]),
            "DisplayVersion": "21H2" if os["build"] == 20348 else "1809", "InstallationType": "Server",
            "CurrentVersion": "6.3", "RegisteredOwner": "N/A"},
        r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName": {"ComputerName": name},
        r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\ComputerName\ActiveComputerName": {"ComputerName": name},
        r"HKEY_LOCAL_MACHINE\SYSTEM\Setup": {"SystemSetupInProgress": int(system.image_state != "IMAGE_STATE_COMPLETE"),
                                             "OOBEInProgress": 0},
    }


def reg_read(system: WindowsSystem, path: str) -> dict[str, Any] | None:
    key = reg_key(path)
    builtin = {k.lower(): (k, v) for k, v in _builtin_keys(system).items()}
    stored = system.os.setdefault("registry", {}).get(key.lower())
    base = builtin.get(key.lower())
    if base is None and stored is None:
        return None
    values = dict(base[1]) if base else {}
    if stored:
        values.update(stored["values"])
    return values


def reg_write(system: WindowsSystem, path: str, name: str | None, value: Any) -> None:
    key = reg_key(path)
    if key.lower() == STATE_KEY.lower() and name and name.lower() == "imagestate":
        system.os["image_state"] = str(value)
        return
    entry = system.os.setdefault("registry", {}).setdefault(key.lower(), {"key": key, "values": {}})
    if name is not None:
        entry["values"][name] = value


def _known_paths(system: WindowsSystem) -> set[str]:
    paths = {r"c:", r"c:\windows", r"c:\windows\system32", r"c:\windows\system32\sysprep", r"c:\windows\temp",
             r"c:\windows\system32\sysprep\sysprep.exe", r"c:\windows\system32\cmd.exe", r"c:\users", r"c:\program files",
             r"c:\programdata", r"c:\windows\system32\windowspowershell\v1.0\powershell.exe",
             r"c:\windows\system32\sysprep\panther"}
    paths |= {rf"c:\users\{u.lower()}" for u, e in system.users.items() if e.get("enabled")}
    if "Web-Server" in system.features:
        paths |= {r"c:\inetpub", r"c:\inetpub\wwwroot", r"c:\inetpub\wwwroot\iisstart.htm"}
    return paths


def win_path(ctx: WinContext, path: str) -> str:
    p = path.replace("/", "\\")
    if not re.match(r"^[A-Za-z]:", p):
        p = ctx.cwd.rstrip("\\") + "\\" + p
    parts: list[str] = []
    for part in p.split("\\"):
        if part in ("", "."):
            continue
        if part == "..":
            if len(parts) > 1:
                parts.pop()
            continue
        parts.append(part)
    return "\\".join(parts) if len(parts) > 1 else parts[0] + "\\"


def file_exists(ctx: WinContext, path: str) -> bool:
    low = path.lower().rstrip("\\")
    files = ctx.system.os.setdefault("files", {})
    dirs = ctx.system.os.setdefault("dirs", [])
    return low in files or low in dirs or low in _known_paths(ctx.system) or any(
        f.startswith(low + "\\") for f in files)


def file_read(ctx: WinContext, path: str) -> str | None:
    entry = ctx.system.os.setdefault("files", {}).get(path.lower())
    if entry is not None:
        return str(entry["data"])
    if path.lower() == r"c:\inetpub\wwwroot\iisstart.htm" and "Web-Server" in ctx.system.features:
        return "<!DOCTYPE html><html><head><title>IIS Windows Server</title></head><body></body></html>\r\n"
    return None


def file_write(ctx: WinContext, path: str, text: str, append: bool = False) -> None:
    files = ctx.system.os.setdefault("files", {})
    parent = path.rsplit("\\", 1)[0]
    if not file_exists(ctx, parent) and not re.fullmatch(r"[A-Za-z]:\\?", parent):
        raise FileNotFoundError(f"Could not find a part of the path '{path}'.")
    if not ctx.admin and not path.lower().startswith(rf"c:\users\{ctx.user.lower()}"):
        raise PermissionError(f"Access to the path '{path}' is denied.")
    old = files.get(path.lower(), {}).get("data", "") if append else ""
    files[path.lower()] = {"path": path, "data": old + text}


# formatting --------------------------------------------------------------------------------
def to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return " ".join(to_str(v) for v in value)
    if isinstance(value, PSObject):
        if value.type_name == "Hashtable":
            return "System.Collections.Hashtable"
        if value.has_ci("Name"):
            return to_str(value.get_ci("Name"))
        return "@{" + "; ".join(f"{k}={to_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, dict):
        return "System.Collections.Hashtable"
    if isinstance(value, datetime.datetime):
        return value.strftime("%A, %B %d, %Y %I:%M:%S %p").replace(" 0", " ")
    return str(value)


VIEWS: dict[str, list[str]] = {
    "HotFix": ["Source", "Description", "HotFixID", "InstalledBy", "InstalledOn"],
    "Service": ["Status", "Name", "DisplayName"],
    "FeatureResult": ["Success", "Restart Needed", "Exit Code", "Feature Result"],
    "LocalUser": ["Name", "Enabled", "Description"],
    "WindowsUpdate": ["ComputerName", "Status", "KB", "Size", "Title"],
}


def _table(rows: list[PSObject], cols: list[str]) -> str:
    cells = [[to_str(r.get_ci(c)) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]

    def line(values: list[str]) -> str:
        return " ".join(v.ljust(widths[i]) if i < len(values) - 1 else v for i, v in enumerate(values)).rstrip()

    out = [CRLF, line(cols), line(["-" * len(c) for c in cols])]
    out += [line(r) for r in cells]
    return CRLF.join(out) + CRLF + CRLF


def _list(rows: list[PSObject]) -> str:
    out = [""]
    for r in rows:
        width = max((len(k) for k in r), default=0)
        out += [f"{k.ljust(width)} : {to_str(v)}" for k, v in r.items()]
        out.append("")
    return CRLF + CRLF.join(out) + CRLF


def _features(rows: list[PSObject]) -> str:
    out = ["Display Name                                            Name                       Install State",
           "------------                                            ----                       -------------"]
    for r in rows:
        mark = "[X]" if r.get("Installed") else "[ ]"
        out.append(f"{mark} {to_str(r['DisplayName']):<52}{to_str(r['Name']):<31}{to_str(r['InstallState'])}")
    return CRLF.join(out) + CRLF


def format_objects(items: list[Any]) -> str:
    """Out-Default: how objects reaching the end of a pipeline are shown."""
    out: list[str] = []
    i = 0
    while i < len(items):
        item = items[i]
        if isinstance(item, PSObject) and item.type_name != "Hashtable":
            j = i
            while j < len(items) and isinstance(items[j], PSObject) and items[j].type_name == item.type_name:
                j += 1
            group = items[i:j]
            if item.type_name == "Feature":
                out.append(_features(group))
            elif item.type_name in VIEWS:
                out.append(_table(group, VIEWS[item.type_name]))
            elif len(item) <= 4:
                out.append(_table(group, list(item.keys())))
            else:
                out.append(_list(group))
            i = j
            continue
        if isinstance(item, dict):
            rows = [PSObject("row", {"Name": k, "Value": v}) for k, v in item.items()]
            out.append(_table(rows, ["Name", "Value"]) if rows else "")
        elif item is not None:
            out.append(to_str(item) + CRLF)
        i += 1
    return "".join(out)


def clixml(messages: list[str]) -> str:
    body = "".join(f'<S S="Error">{escape(m).replace(chr(13) + chr(10), "_x000D__x000A_")}</S>' for m in messages)
    return "#< CLIXML\r\n" + '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">' \
        + body + "</Objs>"


# values ------------------------------------------------------------------------------------
def truthy(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and (truthy(value[0]) if len(value) == 1 else True)
    return bool(value)


def flatten(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def unwrap(items: list[Any]) -> Any:
    if not items:
        return None
    return items[0] if len(items) == 1 else list(items)


def _ci_eq(a: Any, b: Any, case: bool = False) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        sa, sb = to_str(a), to_str(b)
        return sa == sb if case else sa.lower() == sb.lower()
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == truthy(b)
    return bool(a == b)


def _num(v: Any) -> float | int:
    if isinstance(v, (int, float)):
        return v
    try:
        return int(str(v))
    except ValueError:
        try:
            return float(str(v))
        except ValueError:
            return 0


# the interpreter --------------------------------------------------------------------------------
@dataclass
class Bound:
    params: dict[str, Any]
    positional: list[Any]
    input: list[Any] | None

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name.lower(), default)

    def has(self, name: str) -> bool:
        return name.lower() in self.params


@dataclass
class Cmdlet:
    name: str
    fn: Callable[[PowerShell, Bound], list[Any]]
    params: tuple[str, ...] = ()  # in positional order
    switches: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)  # parameter aliases
    pipeline_param: str | None = None


CMDLETS: dict[str, Cmdlet] = {}
ALIASES: dict[str, str] = {}
COMMON = ("ErrorAction", "WarningAction", "InformationAction", "ErrorVariable", "OutVariable")
COMMON_SWITCHES = ("Verbose", "Debug", "WhatIf", "Confirm")


def cmdlet(name: str, *, params: tuple[str, ...] = (), switches: tuple[str, ...] = (), aliases: tuple[str, ...] = (),
           param_aliases: dict[str, str] | None = None,
           pipeline: str | None = None) -> Callable[[Callable[[PowerShell, Bound], list[Any]]], Any]:
    def wrap(fn: Callable[[PowerShell, Bound], list[Any]]) -> Callable[[PowerShell, Bound], list[Any]]:
        CMDLETS[name.lower()] = Cmdlet(name, fn, params, switches, param_aliases or {}, pipeline)
        for a in aliases:
            ALIASES[a.lower()] = name.lower()
        return fn

    return wrap


class PowerShell:
    """One powershell.exe process."""

    def __init__(self, ctx: WinContext, *, encoded: bool = False) -> None:
        self.ctx = ctx
        self.encoded = encoded
        self.vars: dict[str, Any] = {"erroractionpreference": "Continue", "progresspreference": "Continue",
                                     "lastexitcode": 0, "error": []}
        self.functions: dict[str, pp.FunctionDef] = {}
        self.ok = True
        self.error_lines: list[str] = []
        self.env = {
            "COMPUTERNAME": ctx.system.computer_name.upper(), "USERNAME": ctx.user if ctx.user != SYSTEM_USER else
            ctx.system.computer_name.upper() + "$", "USERDOMAIN": ctx.system.computer_name.upper(),
            "SystemRoot": r"C:\Windows", "windir": r"C:\Windows", "SystemDrive": "C:",
            "ProgramFiles": r"C:\Program Files", "ProgramData": r"C:\ProgramData", "TEMP": r"C:\Windows\TEMP"
            if ctx.user == SYSTEM_USER else rf"C:\Users\{ctx.user}\AppData\Local\Temp",
            "USERPROFILE": r"C:\Windows\system32\config\systemprofile" if ctx.user == SYSTEM_USER
            else rf"C:\Users\{ctx.user}", "OS": "Windows_NT", "PROCESSOR_ARCHITECTURE": "AMD64",
            "PSModulePath": r"C:\Program Files\WindowsPowerShell\Modules;C:\Windows\system32\WindowsPowerShell\v1.0\Modules",
        }
        self.env["TMP"] = self.env["TEMP"]
        self.suppress_errors = 0

    # entry ---------------------------------------------------------------------------------
    def run(self, src: str) -> int:
        try:
            body = pp.parse(src)
        except pp.PSParseError as exc:
            self._emit_error(ErrorRecord(str(exc), category="ParserError: (:) [], ParentContainsErrorRecordException",
                                         fqid="ParserError", text=src.splitlines()[0] if src else ""))
            self._flush_errors()
            return 1
        code: int | None = None
        try:
            for stmt in body:
                self.ctx_check()
                items = self.exec_stmt(stmt)
                self.write(items)
        except PSExit as e:
            code = e.code
        except PSError as e:
            self._emit_error(e.record)
            code = 1
        except PSFlow as f:
            if f.kind == "return":
                self.write(flatten(f.value))
        self._flush_errors()
        if code is not None:
            return code
        return 0 if self.ok else 1

    def ctx_check(self) -> None:
        if self.ctx.cancel.is_set():
            raise Cancelled()

    def write(self, items: list[Any]) -> None:
        text = format_objects(items)
        if text:
            self.ctx.out.write(text)

    def _emit_error(self, record: ErrorRecord) -> None:
        self.vars["error"].insert(0, record.message)
        text = record.render()
        if self.encoded:
            self.error_lines.append(text)
        else:
            self.ctx.err.write(text)

    def _flush_errors(self) -> None:
        if self.encoded and self.error_lines:
            self.ctx.err.write(clixml(self.error_lines))
            self.error_lines = []

    def error(self, message: str, *, command: str = "", category: str = "NotSpecified", fqid: str = "NotSpecified",
              text: str = "", action: str | None = None) -> None:
        """A non-terminating error: reported, ``$?`` false, and terminating under ``-ErrorAction Stop``."""
        record = ErrorRecord(message, command, category, fqid, text or self.current_text, self.current_line)
        self.ok = False
        pref = (action or str(self.vars.get("erroractionpreference", "Continue"))).lower()
        if pref == "stop":
            raise PSError(record)
        if pref in ("silentlycontinue", "ignore") or self.suppress_errors:
            self.vars["error"].insert(0, message)
            return
        self._emit_error(record)

    current_text = ""
    current_line = 1

    # statements ----------------------------------------------------------------------------
    def exec_block(self, body: list[Any]) -> list[Any]:
        out: list[Any] = []
        for stmt in body:
            self.ctx_check()
            out.extend(self.exec_stmt(stmt))
        return out

    def exec_stmt(self, stmt: Any) -> list[Any]:
        if isinstance(stmt, pp.Pipeline):
            return self.exec_pipeline(stmt)
        if isinstance(stmt, pp.Assign):
            value = self.eval(stmt.value)
            if stmt.op != "=":
                current = self.eval(stmt.target)
                value = self.binary(stmt.op[0], current, value)
            self.assign(stmt.target, value)
            self.ok = True
            return []
        if isinstance(stmt, pp.IfStmt):
            for cond, body in stmt.clauses:
                if truthy(self.eval(cond)):
                    return self.exec_block(body)
            return self.exec_block(stmt.orelse) if stmt.orelse else []
        if isinstance(stmt, pp.WhileStmt):
            out: list[Any] = []
            first = True
            while True:
                self.ctx_check()
                if not (stmt.do and first):
                    c = truthy(self.eval(stmt.cond))
                    if c == stmt.until:
                        break
                first = False
                try:
                    out.extend(self.exec_block(stmt.body))
                except PSFlow as f:
                    if f.kind == "break":
                        break
                    if f.kind != "continue":
                        raise
                if stmt.do and not first:
                    c = truthy(self.eval(stmt.cond))
                    if c == stmt.until:
                        break
                    first = True  # the condition was just checked
            return out
        if isinstance(stmt, pp.ForEachStmt):
            out = []
            for item in flatten(self.eval(stmt.items)):
                self.vars[stmt.var.lower()] = item
                try:
                    out.extend(self.exec_block(stmt.body))
                except PSFlow as f:
                    if f.kind == "break":
                        break
                    if f.kind != "continue":
                        raise
            return out
        if isinstance(stmt, pp.TryStmt):
            try:
                return self.exec_block(stmt.body)
            except PSError as e:
                if not stmt.catches:
                    raise
                self.vars["_"] = PSObject("ErrorRecord", {"Exception": PSObject("Exception",
                                                                                 {"Message": e.record.message}),
                                                          "Message": e.record.message})
                self.ok = True
                return self.exec_block(stmt.catches[0])
            finally:
                if stmt.final:
                    self.write(self.exec_block(stmt.final))
        if isinstance(stmt, pp.Flow):
            value = self.eval(stmt.value) if stmt.value is not None else None
            if stmt.kind == "exit":
                code = int(_num(value)) if value is not None else (0 if self.ok else 1)
                raise PSExit(code & 0xFFFFFFFF if code >= 0 else code)
            if stmt.kind == "throw":
                message = to_str(value) if value is not None else "ScriptHalted"
                raise PSError(ErrorRecord(message, category="OperationStopped: (" + message + ":String) [], "
                                          "RuntimeException", fqid=message, text=self.current_text))
            raise PSFlow(stmt.kind, value)
        if isinstance(stmt, pp.FunctionDef):
            self.functions[stmt.name.lower()] = stmt
            return []
        raise AssertionError(stmt)

    def assign(self, target: Any, value: Any) -> None:
        if isinstance(target, pp.Var):
            name = target.name
            if name.lower().startswith("env:"):
                self.env[name[4:]] = to_str(value)
            else:
                self.vars[name.lower()] = value
        elif isinstance(target, pp.Member):
            obj = self.eval(target.target)
            if isinstance(obj, dict):
                obj[target.name] = value
        elif isinstance(target, pp.Index):
            obj = self.eval(target.target)
            idx = self.eval(target.index)
            if isinstance(obj, list):
                obj[int(_num(idx))] = value
            elif isinstance(obj, dict):
                obj[idx] = value

    def exec_pipeline(self, pipe: pp.Pipeline) -> list[Any]:
        self.current_text, self.current_line = pipe.text, pipe.line
        fault = self.ctx.hooks.take_fault(pipe.text) if pipe.text else None
        if fault is not None:
            self.ctx.hooks.log(f"fault {fault.id} fired for {pipe.text!r}")
            if fault.hang:
                hang(self.ctx.cancel, self.ctx.hooks.lock)
            self.vars["lastexitcode"] = fault.exit_code
            self.error(fault.stderr or f"injected fault {SIMULATED}", category="NotSpecified: (:) [], "
                       "RemoteException", fqid="NativeCommandError")
            return []
        merge = any(op.endswith("&1") for op, _ in pipe.redirs)
        silence_errors = any(op.startswith("2") and not op.endswith("&1") for op, _ in pipe.redirs)
        if silence_errors:
            self.suppress_errors += 1
        self.ok = True
        try:
            items: list[Any] | None = None
            for idx, element in enumerate(pipe.elements):
                if isinstance(element, pp.Command):
                    items = self.invoke(element, items if idx else None)
                elif isinstance(element, pp.Binary) and element.op.startswith("chain"):
                    left = self.exec_pipeline(element.left)
                    ok = self.ok
                    if (element.op == "chain&&") == ok:
                        return left + self.exec_pipeline(element.right)
                    return left
                else:
                    value = self.eval(element)
                    items = flatten(value) if not isinstance(value, dict) or isinstance(value, PSObject) \
                        else [value]
        finally:
            if silence_errors:
                self.suppress_errors -= 1
        out = items or []
        for op, target in pipe.redirs:
            if op.endswith("&1"):
                continue
            dest = self.eval(target) if target is not None else None
            if dest is None or op.startswith("2"):
                if not op.startswith("2"):
                    out = []
                continue
            path = win_path(self.ctx, to_str(dest))
            try:
                with self.ctx.hooks.lock:
                    file_write(self.ctx, path, format_objects(out), append=op.endswith(">>"))
                self.ctx.hooks.changed()
            except (OSError, FileNotFoundError) as exc:
                self.error(str(exc), command="Out-File")
            out = []
        del merge
        return out

    # commands ------------------------------------------------------------------------------
    def invoke(self, cmd: pp.Command, input_items: list[Any] | None) -> list[Any]:
        self.ctx_check()
        name = cmd.name if isinstance(cmd.name, str) else to_str(self.eval(cmd.name))
        if isinstance(cmd.name, pp.ScriptBlock):
            return self.exec_block(cmd.name.body)
        low = name.lower()
        fn = self.functions.get(low)
        if fn is not None:
            args = [self.eval(v) for k, v in cmd.args if k == "value"]
            saved = dict(self.vars)
            for i, p in enumerate(fn.params):
                self.vars[p.lower()] = args[i] if i < len(args) else None
            self.vars["args"] = args[len(fn.params):]
            try:
                return self.exec_block(fn.body)
            except PSFlow as f:
                if f.kind == "return":
                    return flatten(f.value)
                raise
            finally:
                for k in list(self.vars):
                    if k not in saved:
                        del self.vars[k]
                self.vars.update({k: v for k, v in saved.items() if k in [p.lower() for p in fn.params]
                                  or k == "args"})
        key = ALIASES.get(low, low)
        spec = CMDLETS.get(key)
        if spec is not None:
            bound = self.bind(spec, cmd, input_items)
            if bound is None:
                return []
            action = bound.get("ErrorAction")
            saved_pref = self.vars["erroractionpreference"]
            if action is not None:
                self.vars["erroractionpreference"] = to_str(action)
            try:
                with self.ctx.hooks.lock:
                    return spec.fn(self, bound)
            finally:
                self.vars["erroractionpreference"] = saved_pref
        args = []
        for kind, v in cmd.args:
            if kind == "param":
                args.append("-" + v)
            else:
                args.extend(to_str(x) for x in flatten(self.eval(v)))
        stdin = "".join(to_str(x) + CRLF for x in input_items) if input_items else ""
        native = find_native(self.ctx, name)
        if native is None:
            self.error(f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
                       "operable program. Check the spelling of the name, or if a path was included, verify that the "
                       f"path is correct and try again. {SIMULATED}", command=name,
                       category=f"ObjectNotFound: ({name}:String) [], CommandNotFoundException",
                       fqid="CommandNotFoundException")
            return []
        errbuf = _Collect()
        ctx = WinContext(self.ctx.system, self.ctx.hooks, self.ctx.user, self.ctx.cancel, _Collect(), errbuf,
                         TextInput(stdin), self.ctx.cwd)
        with self.ctx.hooks.lock:
            code, text = native(ctx, [name, *args])
        self.vars["lastexitcode"] = code
        if errbuf.text:
            if self.encoded:
                self.error_lines.append(errbuf.text)
            else:
                self.ctx.err.write(errbuf.text)
        if code != 0:
            self.ok = False
        return [ln for ln in re.split(r"\r?\n", text)[: -1 if text.endswith("\n") else None]] if text else []

    def bind(self, spec: Cmdlet, cmd: pp.Command, input_items: list[Any] | None) -> Bound | None:
        names = list(spec.params) + list(spec.switches) + list(COMMON) + list(COMMON_SWITCHES)
        params: dict[str, Any] = {}
        positional: list[Any] = []
        args = list(cmd.args)
        i = 0
        while i < len(args):
            kind, v = args[i]
            if kind == "value":
                positional.append(self.eval(v))
                i += 1
                continue
            given = v.lower()
            target = spec.aliases.get(given) or {"ea": "ErrorAction"}.get(given)
            if target is None:
                exact = [n for n in names if n.lower() == given]
                prefix = [n for n in names if n.lower().startswith(given)]
                target = exact[0] if exact else prefix[0] if len(prefix) == 1 else None
                if target is None and len(prefix) > 1:
                    self.error(f"Parameter cannot be processed because the parameter name '{v}' is ambiguous. "
                               f"Possible matches include: {' '.join('-' + p for p in prefix)}.", command=spec.name,
                               category="InvalidArgument", fqid="AmbiguousParameter")
                    return None
            if target is None:
                self.error(f"A parameter cannot be found that matches parameter name '{v}'.", command=spec.name,
                           category=f"InvalidArgument: (:) [{spec.name}], ParameterBindingException",
                           fqid=f"NamedParameterNotFound,{spec.name}")
                return None
            if target in spec.switches or target in COMMON_SWITCHES:
                if i + 1 < len(args) and args[i + 1][0] == "value" and isinstance(args[i + 1][1], pp.Var) and \
                        args[i + 1][1].name.lower() in ("true", "false"):
                    params[target.lower()] = args[i + 1][1].name.lower() == "true"
                    i += 2
                else:
                    params[target.lower()] = True
                    i += 1
                continue
            if i + 1 >= len(args) or args[i + 1][0] != "value":
                self.error(f"Missing an argument for parameter '{target}'. Specify a parameter of type "
                           "'System.String' and try again.", command=spec.name,
                           category=f"InvalidArgument: (:) [{spec.name}], ParameterBindingException",
                           fqid=f"MissingArgument,{spec.name}")
                return None
            params[target.lower()] = self.eval(args[i + 1][1])
            i += 2
        free = [p for p in spec.params if p.lower() not in params]
        for p, value in zip(free, positional, strict=False):
            params[p.lower()] = value
        extra = positional[len(free):]
        if input_items is not None and spec.pipeline_param and spec.pipeline_param.lower() not in params:
            params[spec.pipeline_param.lower()] = input_items if len(input_items) != 1 else input_items[0]
        return Bound(params, extra, input_items)

    def run_block(self, block: Any, item: Any) -> list[Any]:
        saved = self.vars.get("_")
        self.vars["_"] = item
        self.vars["psitem"] = item
        try:
            if isinstance(block, pp.ScriptBlock):
                return self.exec_block(block.body)
            return flatten(block)
        finally:
            self.vars["_"] = saved

    # expressions ----------------------------------------------------------------------------
    def lookup(self, name: str) -> Any:
        low = name.lower()
        if low == "true":
            return True
        if low == "false":
            return False
        if low == "null":
            return None
        if low == "?":
            return self.ok
        if low.startswith("env:"):
            key = name[4:]
            return next((v for k, v in self.env.items() if k.lower() == key.lower()), None)
        if low == "psversiontable":
            return PSObject("Hashtable", {"PSVersion": "5.1.20348.2400", "PSEdition": "Desktop",
                                          "BuildVersion": f"10.0.{self.ctx.system.os['build']}"})
        if low == "home":
            return self.env["USERPROFILE"]
        if low == "pwd":
            return self.ctx.cwd
        return self.vars.get(low)

    def expand(self, raw: str) -> str:
        out: list[str] = []
        i = 0
        escapes = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "a": "\a", "`": "`", '"': '"', "$": "$", "'": "'"}
        while i < len(raw):
            c = raw[i]
            if c == "`" and i + 1 < len(raw):
                out.append(escapes.get(raw[i + 1], raw[i + 1]))
                i += 2
            elif c == '"' and raw.startswith('""', i):
                out.append('"')
                i += 2
            elif raw.startswith("$(", i):
                depth, j = 1, i + 2
                while j < len(raw) and depth:
                    depth += {"(": 1, ")": -1}.get(raw[j], 0)
                    j += 1
                try:
                    body = pp.Parser(raw[i + 2:j - 1]).script()
                except pp.PSParseError as exc:
                    raise PSError(ErrorRecord(str(exc), category="ParserError", fqid="ParserError")) from exc
                out.append(to_str(unwrap(self.exec_block(body))))
                i = j
            elif c == "$":
                m = re.match(r"\$\{([^}]+)\}|\$([A-Za-z_]\w*:\w+|\w+|[?_])", raw[i:])
                if not m:
                    out.append(c)
                    i += 1
                    continue
                out.append(to_str(self.lookup(m.group(1) or m.group(2))))
                i += m.end()
            else:
                out.append(c)
                i += 1
        return "".join(out)

    def eval(self, node: Any) -> Any:
        if isinstance(node, pp.Const):
            return node.value
        if isinstance(node, pp.Expand):
            return self.expand(node.raw)
        if isinstance(node, pp.Var):
            return self.lookup(node.name)
        if isinstance(node, pp.Pipeline):
            return unwrap(self.exec_pipeline(node))
        if isinstance(node, pp.SubExpr):
            items = self.exec_block(node.body)
            return list(items) if node.array else unwrap(items)
        if isinstance(node, pp.ArrayLit):
            return [self.eval(i) for i in node.items]
        if isinstance(node, pp.HashLit):
            return PSObject("Hashtable", {to_str(self.eval(k)): self.eval(v) for k, v in node.items})
        if isinstance(node, pp.ScriptBlock):
            return node
        if isinstance(node, pp.TypeLit):
            return node
        if isinstance(node, pp.Cast):
            return self.cast(node.type, self.eval(node.value))
        if isinstance(node, pp.Unary):
            v = self.eval(node.operand)
            if node.op == "not":
                return not truthy(v)
            if node.op == "neg":
                return -_num(v)
            return "".join(to_str(x) for x in flatten(v))
        if isinstance(node, pp.Binary):
            if node.op == "and":
                return truthy(self.eval(node.left)) and truthy(self.eval(node.right))
            if node.op == "or":
                return truthy(self.eval(node.left)) or truthy(self.eval(node.right))
            return self.binary(node.op, self.eval(node.left), self.eval(node.right))
        if isinstance(node, pp.Member):
            return self.member(node)
        if isinstance(node, pp.Index):
            target, idx = self.eval(node.target), self.eval(node.index)
            if isinstance(target, (list, str)):
                try:
                    return target[int(_num(idx))]
                except IndexError:
                    return None
            if isinstance(target, PSObject):
                return target.get_ci(to_str(idx))
            if isinstance(target, dict):
                return target.get(idx)
            return None
        if isinstance(node, pp.Command):
            return unwrap(self.invoke(node, None))
        raise AssertionError(node)

    def cast(self, type_name: str, value: Any) -> Any:
        t = type_name.lower().replace("system.", "")
        if t in ("int", "int32", "int64", "long"):
            return int(_num(value))
        if t in ("string", "str"):
            return to_str(value)
        if t in ("bool", "boolean"):
            return truthy(value)
        if t in ("double", "float", "decimal"):
            return float(_num(value))
        if t in ("array", "object[]", "string[]"):
            return flatten(value)
        if t == "void":
            return None
        return value

    def binary(self, op: str, a: Any, b: Any) -> Any:
        case = op.startswith("c") and op[1:] in pp.COMPARISON
        base = op[1:] if case else op
        if base == "concat":
            return to_str(a) + to_str(b)
        if op == "+":
            if isinstance(a, str):
                return a + to_str(b)
            if isinstance(a, list):
                return a + flatten(b)
            if isinstance(a, dict) and isinstance(b, dict):
                return PSObject("Hashtable", {**a, **b})
            return _num(a) + _num(b)
        if op == "-":
            return _num(a) - _num(b)
        if op == "*":
            if isinstance(a, str):
                return a * int(_num(b))
            return _num(a) * _num(b)
        if op == "/":
            r = _num(a) / _num(b)
            return int(r) if float(r).is_integer() else r
        if op == "%":
            return _num(a) % _num(b)
        if isinstance(a, list) and base in ("eq", "ne", "like", "notlike", "match", "notmatch"):
            return [x for x in a if self.binary(op, x, b)]
        if base == "eq":
            return _ci_eq(a, b, case)
        if base == "ne":
            return not _ci_eq(a, b, case)
        if base in ("gt", "ge", "lt", "le"):
            if isinstance(a, str) and isinstance(b, str):
                sa, sb = a.lower(), b.lower()
                return {"gt": sa > sb, "ge": sa >= sb, "lt": sa < sb, "le": sa <= sb}[base]
            x, y = _num(a), _num(b)
            return {"gt": x > y, "ge": x >= y, "lt": x < y, "le": x <= y}[base]
        if base in ("like", "notlike"):
            hit = fnmatch.fnmatchcase(to_str(a) if case else to_str(a).lower(), to_str(b) if case else to_str(b).lower())
            return hit if base == "like" else not hit
        if base in ("match", "notmatch"):
            m = re.search(to_str(b), to_str(a), 0 if case else re.IGNORECASE)
            if m:
                self.vars["matches"] = PSObject("Hashtable", {str(i): g for i, g in enumerate([m.group(0), *m.groups()])})
            return bool(m) if base == "match" else not m
        if base in ("contains", "notcontains"):
            hit = any(_ci_eq(x, b, case) for x in flatten(a))
            return hit if base == "contains" else not hit
        if base in ("in", "notin"):
            hit = any(_ci_eq(x, a, case) for x in flatten(b))
            return hit if base == "in" else not hit
        if base in ("is", "isnot"):
            name = b.name.lower() if isinstance(b, pp.TypeLit) else to_str(b).lower()
            types = {"string": str, "int": int, "bool": bool, "array": list, "hashtable": dict}
            hit = isinstance(a, types.get(name.replace("system.", ""), object))
            return hit if base == "is" else not hit
        if base == "replace":
            pat, rep = ([*flatten(b), ""])[:2]
            return re.sub(to_str(pat), re.sub(r"\$(\d)", r"\\\1", to_str(rep)), to_str(a),
                          flags=0 if case else re.IGNORECASE)
        if base == "f":
            args = flatten(b)

            def fill(m: re.Match[str]) -> str:
                i = int(m.group(1))
                return to_str(args[i]) if i < len(args) else ""

            return re.sub(r"\{(\d+)(?:[,:][^}]*)?\}", fill, to_str(a))
        if base == "split":
            return re.split(to_str(b), to_str(a))
        if base == "join":
            return to_str(b).join(to_str(x) for x in flatten(a))
        if base == "xor":
            return truthy(a) != truthy(b)
        raise PSError(ErrorRecord(f"The operator '-{op}' is not supported {SIMULATED}."))

    def member(self, node: pp.Member) -> Any:
        if node.static:
            with self.ctx.hooks.lock:
                return self.static(node)
        target = self.eval(node.target)
        name = node.name
        if node.args is not None:
            return self.method(target, name, [self.eval(a) for a in node.args])
        return get_property(target, name)

    def method(self, target: Any, name: str, args: list[Any]) -> Any:
        low = name.lower()
        if isinstance(target, str):
            s = target
            simple: dict[str, Callable[[], Any]] = {
                "trim": lambda: s.strip(), "tolower": lambda: s.lower(), "toupper": lambda: s.upper(),
                "tostring": lambda: s, "trimend": lambda: s.rstrip(*(to_str(a) for a in args[:1])),
                "trimstart": lambda: s.lstrip(*(to_str(a) for a in args[:1])),
                "contains": lambda: to_str(args[0]) in s, "startswith": lambda: s.startswith(to_str(args[0])),
                "endswith": lambda: s.endswith(to_str(args[0])), "replace": lambda: s.replace(to_str(args[0]),
                                                                                            to_str(args[1])),
                "split": lambda: s.split(to_str(args[0])) if args else s.split(),
                "substring": lambda: s[int(_num(args[0])):] if len(args) == 1 else
                s[int(_num(args[0])):int(_num(args[0])) + int(_num(args[1]))],
                "indexof": lambda: s.find(to_str(args[0])),
            }
            if low in simple:
                return simple[low]()
        if isinstance(target, list) and low == "contains":
            return any(_ci_eq(x, args[0]) for x in target)
        if low == "tostring":
            return to_str(target)
        if isinstance(target, dict) and low in ("containskey", "contains"):
            return any(to_str(k).lower() == to_str(args[0]).lower() for k in target)
        raise PSError(ErrorRecord(f"Method invocation failed because [{type(target).__name__}] does not contain a "
                                  f"method named '{name}'. {SIMULATED}", category="InvalidOperation",
                                  fqid="MethodNotFound"))

    def static(self, node: pp.Member) -> Any:
        type_name = node.target.name.lower().replace("system.", "") if isinstance(node.target, pp.TypeLit) else ""
        name = node.name.lower()
        args = [self.eval(a) for a in node.args or []]
        system = self.ctx.system
        table: dict[tuple[str, str], Callable[[], Any]] = {
            ("environment", "machinename"): lambda: system.computer_name.upper(),
            ("environment", "username"): lambda: self.env["USERNAME"],
            ("environment", "newline"): lambda: CRLF,
            ("environment", "osversion"): lambda: PSObject("OperatingSystem", {
                "Platform": "Win32NT", "Version": f"10.0.{system.os['build']}.0",
                "VersionString": f"Microsoft Windows NT 10.0.{system.os['build']}.0"}),
            ("net.dns", "gethostname"): lambda: system.computer_name,
            ("io.file", "exists"): lambda: file_exists(self.ctx, win_path(self.ctx, to_str(args[0]))),
            ("io.file", "readalltext"): lambda: file_read(self.ctx, win_path(self.ctx, to_str(args[0]))),
            ("io.file", "writealltext"): lambda: self._write_all(to_str(args[0]), to_str(args[1])),
            ("io.path", "combine"): lambda: "\\".join(to_str(a).rstrip("\\") for a in args),
            ("math", "round"): lambda: round(_num(args[0]), int(_num(args[1])) if len(args) > 1 else 0),
            ("datetime", "now"): lambda: datetime.datetime.now(),
            ("datetime", "utcnow"): lambda: datetime.datetime.now(datetime.UTC),
            ("convert", "tobase64string"): lambda: base64.b64encode(bytes(args[0]) if isinstance(args[0], (bytes,
                                                                                                            list))
                                                                   else to_str(args[0]).encode()).decode(),
            ("text.encoding", "unicode"): lambda: "utf-16le",
            ("text.encoding", "utf8"): lambda: "utf-8",
        }
        fn = table.get((type_name, name))
        if fn is None:
            raise PSError(ErrorRecord(f"Unable to find type or member [{type_name}]::{node.name} {SIMULATED}.",
                                      category="InvalidOperation", fqid="TypeNotFound"))
        return fn()

    def _write_all(self, path: str, text: str) -> None:
        file_write(self.ctx, win_path(self.ctx, path), text)
        self.ctx.hooks.changed()


class _Collect:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text


def get_property(target: Any, name: str) -> Any:
    low = name.lower()
    if isinstance(target, PSObject):
        if target.has_ci(name):
            return target.get_ci(name)
        if low == "count":
            return 1
        return None
    if isinstance(target, dict):
        if low in ("count", "keys", "values"):
            return len(target) if low == "count" else list(target.keys() if low == "keys" else target.values())
        return next((v for k, v in target.items() if to_str(k).lower() == low), None)
    if isinstance(target, list):
        if low in ("count", "length"):
            return len(target)
        return unwrap([get_property(x, name) for x in target])
    if isinstance(target, str) and low == "length":
        return len(target)
    if target is None:
        return None
    if low == "count":
        return 1
    return None


# native commands (cmd.exe builtins and .exe programs) -------------------------------------------
Native = Callable[[WinContext, list[str]], tuple[int, str]]
NATIVES: dict[str, Native] = {}


def native(*names: str) -> Callable[[Native], Native]:
    def wrap(fn: Native) -> Native:
        for n in names:
            NATIVES[n] = fn
        return fn

    return wrap


def find_native(ctx: WinContext, name: str) -> Native | None:
    base = name.replace("/", "\\").rsplit("\\", 1)[-1].lower()
    stem = base[:-4] if base.endswith(".exe") else base
    if "\\" in name and stem in NATIVES:
        path = win_path(ctx, name)
        if not file_exists(ctx, path) and not file_exists(ctx, path + ".exe"):
            return None
    if stem in NATIVES:
        return NATIVES[stem]
    if "\\" in name or base.endswith((".ps1", ".cmd", ".bat")):
        path = win_path(ctx, name)
        if file_read(ctx, path) is not None:
            if base.endswith(".ps1"):
                return lambda c, argv: _run_ps_file(c, path)
            if base.endswith((".cmd", ".bat")):
                return lambda c, argv: _run_cmd_file(c, path)
    return None


def _run_ps_file(ctx: WinContext, path: str) -> tuple[int, str]:
    out = _Collect()
    sub = WinContext(ctx.system, ctx.hooks, ctx.user, ctx.cancel, out, ctx.err, ctx.stdin, ctx.cwd)
    code = PowerShell(sub).run(file_read(ctx, path) or "")
    return code, out.text


def _run_cmd_file(ctx: WinContext, path: str) -> tuple[int, str]:
    out = _Collect()
    sub = WinContext(ctx.system, ctx.hooks, ctx.user, ctx.cancel, out, ctx.err, ctx.stdin, ctx.cwd)
    code = 0
    for line in (file_read(ctx, path) or "").splitlines():
        if line.strip() and not line.strip().lower().startswith(("rem ", "@echo off", "::")):
            code = run_cmd_line(sub, line)
    return code, out.text


@native("hostname")
def _hostname(ctx: WinContext, argv: list[str]) -> tuple[int, str]:
    if len(argv) > 1:
        ctx.err.write("sethostname: Use the Network Control Panel Applet to set hostname.\r\n"
                      "hostname -s is not supported.\r\n")
        return 1, ""
    return 0, ctx.system.computer_name + CRLF


@native("whoami")
def _whoami(ctx: WinContext, argv: list[str]) -> tuple[int, str]:
    return 0, ctx.whoami() + CRLF


@native("shutdown")
def _shutdown(ctx: WinContext, argv: list[str]) -> tuple[int, str]:
    flags = {a.lower().split(":")[0] for a in argv[1:] if a.startswith(("/", "-"))}
    flags = {"/" + f[1:] for f in flags}
    if "/a" in flags:
        return 0, ""
    if not flags & {"/s", "/r", "/p", "/g"}:
        ctx.err.write("Usage: shutdown [/i | /l | /s | /sg | /r | /g | /a | /p | /h | /e | /o] [/hybrid] [/soft] "
                      "[/fw] [/f]\r\n    [/m \\\\computer][/t xxx][/d [p|u:]xx:yy [/c \"comment\"]]\r\n")
        return 1, ""
    if not ctx.admin:
        ctx.err.write(f"{ctx.system.computer_name}: Access is denied.(5)\r\n")
        return 5, ""
    delay = 0.0
    if "/t" in flags:
        args = [a.lower() for a in argv[1:]]
        i = args.index("/t") if "/t" in args else args.index("-t")
        delay = float(argv[i + 2]) if i + 2 < len(argv) and argv[i + 2].isdigit() else 30.0
    elif "/p" not in flags:
        delay = 30.0  # shutdown's default timeout
    action = "reboot" if flags & {"/r", "/g"} else "poweroff"
    if delay:
        ctx.hooks.later(delay, lambda: ctx.hooks.power(action))
    else:
        ctx.hooks.power(action)
    return 0, ""


@native("sysprep")
def _sysprep(ctx: WinContext, argv: list[str]) -> tuple[int, str]:
    code, _ = start_sysprep(ctx, argv[1:])
    return code, ""


def start_sysprep(ctx: WinContext, args: list[str]) -> tuple[int, threading.Event | None]:
    """sysprep.exe is a GUI program: it returns at once and works on; the Event is set when it is done."""
    flags = {a.lower().split(":")[0] for a in args}
    if not ctx.admin:
        ctx.err.write("You must be an administrator to run this application.\r\n")
        return 1, None
    generalize = "/generalize" in flags
    oobe = "/oobe" in flags
    after = "shutdown" if "/shutdown" in flags else "reboot" if "/reboot" in flags else "quit"
    system = ctx.system
    with ctx.hooks.lock:
        try:
            system.sysprep_begin(generalize=generalize, oobe=oobe)
        except SysprepError as exc:
            system.os.setdefault("files", {})[r"c:\windows\system32\sysprep\panther\setuperr.log"] = {
                "path": r"C:\Windows\System32\Sysprep\Panther\setuperr.log", "data": str(exc) + CRLF}
            ctx.hooks.log(f"sysprep refused: {exc}")
            return 0, None  # the GUI shows the error; the process started fine
        system.os.setdefault("files", {})[r"c:\windows\system32\sysprep\panther\setupact.log"] = {
            "path": r"C:\Windows\System32\Sysprep\Panther\setupact.log",
            "data": f"Info SYSPRP ========================================================{CRLF}"
                    f"Info SYSPRP ===== Beginning of a new sysprep run ====={CRLF}"
                    f"Info SYSPRP Sysprep {' '.join(args)} {SIMULATED}{CRLF}"}
    ctx.hooks.changed()
    ctx.hooks.log(f"sysprep {' '.join(args)}: started")

    def finish() -> None:
        with ctx.hooks.lock:
            system.sysprep_finish(generalize=generalize, oobe=oobe)
            log = system.os["files"][r"c:\windows\system32\sysprep\panther\setupact.log"]
            log["data"] += f"Info SYSPRP Sysprep_Generalize: completed; ImageState {system.image_state}{CRLF}"
        ctx.hooks.changed()
        ctx.hooks.log(f"sysprep done: ImageState {system.image_state}")
        if after in ("shutdown", "reboot"):
            ctx.hooks.power("poweroff" if after == "shutdown" else "reboot")

    return 0, ctx.hooks.later(SYSPREP_SECONDS, finish, override=SYSPREP_SECONDS_SETTING)


@native("cmd")
def _cmd(ctx: WinContext, argv: list[str]) -> tuple[int, str]:
    args = argv[1:]
    out = _Collect()
    sub = WinContext(ctx.system, ctx.hooks, ctx.user, ctx.cancel, out, ctx.err, ctx.stdin, ctx.cwd)
    while args and args[0].lower() in ("/q", "/d", "/s", "/e:on", "/v:on"):
        args = args[1:]
    if args and args[0].lower() in ("/c", "/k"):
        return run_cmd_line(sub, " ".join(args[1:])), out.text
    code = 0
    for line in ctx.stdin.read().splitlines():
        code = run_cmd_line(sub, line)
    return code, out.text


@native("powershell", "pwsh")
def _powershell(ctx: WinContext, argv: list[str]) -> tuple[int, str]:
    out = _Collect()
    sub = WinContext(ctx.system, ctx.hooks, ctx.user, ctx.cancel, out, ctx.err, ctx.stdin, ctx.cwd)
    return run_powershell_args(sub, argv[1:]), out.text


@native("reg")
def _reg(ctx: WinContext, argv: list[str]) -> tuple[int, str]:
    args = argv[1:]
    if len(args) < 2:
        ctx.err.write("ERROR: Invalid syntax.\r\nType \"REG /?\" for usage.\r\n")
        return 1, ""
    op, key = args[0].lower(), args[1]
    opts = {a.lower(): args[i + 1] if i + 1 < len(args) else "" for i, a in enumerate(args) if a.startswith("/")}
    if op == "query":
        values = reg_read(ctx.system, key)
        if values is None:
            ctx.err.write("ERROR: The system was unable to find the specified registry key or value.\r\n")
            return 1, ""
        name = opts.get("/v")
        shown = {k: v for k, v in values.items() if name is None or k.lower() == name.lower()}
        if name is not None and not shown:
            ctx.err.write("ERROR: The system was unable to find the specified registry key or value.\r\n")
            return 1, ""
        lines = [CRLF + reg_key(key)]
        for k, v in shown.items():
            kind = "REG_DWORD" if isinstance(v, int) else "REG_SZ"
            lines.append(f"    {k}    {kind}    {hex(v) if isinstance(v, int) else v}")
        return 0, CRLF.join(lines) + CRLF + CRLF
    if op == "add":
        if not ctx.admin:
            ctx.err.write("ERROR: Access is denied.\r\n")
            return 1, ""
        value: Any = opts.get("/d", "")
        if opts.get("/t", "").upper() == "REG_DWORD":
            value = int(str(value), 0) if value else 0
        reg_write(ctx.system, key, opts.get("/v"), value)
        ctx.hooks.changed()
        return 0, "The operation completed successfully." + CRLF
    ctx.err.write(f"ERROR: reg {op} is not simulated {SIMULATED}.\r\n")
    return 1, ""


@native("net")
def _net(ctx: WinContext, argv: list[str]) -> tuple[int, str]:
    args = [a.lower() for a in argv[1:]]
    if args[:1] == ["user"] and len(args) == 1:
        names = "   ".join(f"{n:<25}" for n in ctx.system.users)
        return 0, (f"\r\nUser accounts for \\\\{ctx.system.computer_name}\r\n\r\n"
                   f"{'-' * 79}\r\n{names.rstrip()}\r\nThe command completed successfully.\r\n\r\n")
    if args[:1] in (["start"], ["stop"]) and len(args) > 1:
        svc = next((k for k in ctx.system.os["services"] if k.lower() == args[1]), None)
        if svc is None:
            ctx.err.write("The service name is invalid.\r\n\r\nMore help is available by typing NET HELPMSG 2185.\r\n")
            return 2, ""
        ctx.system.os["services"][svc]["running"] = args[0] == "start"
        return 0, f"The {svc} service was {'started' if args[0] == 'start' else 'stopped'} successfully.\r\n"
    ctx.err.write(f"net {' '.join(args)}: not simulated {SIMULATED}\r\n")
    return 1, ""


# cmd.exe ----------------------------------------------------------------------------------------
def _cmd_expand(ctx: WinContext, text: str, env: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        return next((v for k, v in env.items() if k.lower() == name.lower()), m.group(0))

    return re.sub(r"%([^%\s]+)%", sub, text)


def _cmd_env(ctx: WinContext) -> dict[str, str]:
    return PowerShell(ctx).env


def run_cmd_line(ctx: WinContext, line: str, env: dict[str, str] | None = None) -> int:
    """cmd.exe /c LINE: ``&``, ``&&``, ``||`` chains of builtins and programs; returns ERRORLEVEL."""
    env = env if env is not None else _cmd_env(ctx)
    parts = _split_cmd_chain(line)
    level = 0
    skip = False
    for op, part in parts:
        if (op == "&&" and level != 0) or (op == "||" and level == 0):
            skip = True
            continue
        skip = False
        env["ERRORLEVEL"] = str(level)
        level = _run_cmd_one(ctx, _cmd_expand(ctx, part.strip(), env), env)
    del skip
    return level


def _split_cmd_chain(line: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    buf: list[str] = []
    op = ""
    i, quoted = 0, False
    while i < len(line):
        c = line[i]
        if c == '"':
            quoted = not quoted
        if not quoted and line.startswith(("&&", "||"), i):
            out.append((op, "".join(buf)))
            op, buf = line[i:i + 2], []
            i += 2
            continue
        if not quoted and c == "&":
            out.append((op, "".join(buf)))
            op, buf = "&", []
            i += 1
            continue
        buf.append(c)
        i += 1
    out.append((op, "".join(buf)))
    return [(o, p) for o, p in out if p.strip()]


def _cmd_args(text: str) -> list[str]:
    return [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', text)]


def _run_cmd_one(ctx: WinContext, text: str, env: dict[str, str]) -> int:
    if not text or text.lower().startswith(("rem ", "::")):
        return 0
    fault = ctx.hooks.take_fault(text)
    if fault is not None:
        ctx.hooks.log(f"fault {fault.id} fired for {text!r}")
        if fault.hang:
            hang(ctx.cancel, ctx.hooks.lock)
        ctx.err.write((fault.stderr or f"injected fault {SIMULATED}").rstrip("\r\n") + CRLF)
        return fault.exit_code
    redirect = None
    m = re.search(r"\s(\d?>>?)\s*(\S+)\s*$", text)
    if m:
        redirect = (m.group(1), m.group(2))
        text = text[:m.start()]
    words = _cmd_args(text)
    name = words[0].lower()
    if name.startswith("@"):
        name = name[1:]
    out_ctx = ctx
    collected = _Collect()
    if redirect:
        out_ctx = WinContext(ctx.system, ctx.hooks, ctx.user, ctx.cancel, collected, ctx.err, ctx.stdin, ctx.cwd)
    with ctx.hooks.lock:
        code = _cmd_builtin(out_ctx, name, text, words, env)
    if redirect and redirect[1].lower() != "nul":
        try:
            file_write(ctx, win_path(ctx, redirect[1]), collected.text, append=redirect[0].endswith(">>"))
            ctx.hooks.changed()
        except OSError as exc:
            ctx.err.write(f"{exc}\r\n")
            return 1
    return code


def _cmd_builtin(ctx: WinContext, name: str, text: str, words: list[str], env: dict[str, str]) -> int:
    if name == "echo":
        rest = text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else ""
        ctx.out.write(("ECHO is on." if not rest else rest) + CRLF)
        return 0
    if name == "exit":
        args = [w for w in words[1:] if w.lower() != "/b"]
        return int(args[0]) if args and args[0].lstrip("-").isdigit() else 0
    if name == "ver":
        ctx.out.write(f"{CRLF}Microsoft Windows [Version 10.0.{ctx.system.os['build']}.{ctx.system.os['ubr']}]{CRLF}")
        return 0
    if name == "set":
        if len(words) == 1:
            ctx.out.write("".join(f"{k}={v}{CRLF}" for k, v in sorted(env.items())))
            return 0
        k, _, v = text.split(None, 1)[1].partition("=")
        if _:
            env[k] = v
            return 0
        hits = {a: b for a, b in env.items() if a.lower().startswith(k.lower())}
        ctx.out.write("".join(f"{a}={b}{CRLF}" for a, b in hits.items()))
        return 0 if hits else 1
    if name == "type":
        content = file_read(ctx, win_path(ctx, words[1])) if len(words) > 1 else None
        if content is None:
            ctx.err.write("The system cannot find the file specified." + CRLF)
            return 1
        ctx.out.write(content)
        return 0
    if name in ("cd", "chdir") and len(words) == 1:
        ctx.out.write(ctx.cwd + CRLF)
        return 0
    if name == "cls":
        return 0
    prog = find_native(ctx, words[0])
    if prog is None:
        ctx.err.write(f"'{words[0]}' is not recognized as an internal or external command,{CRLF}"
                      f"operable program or batch file. {SIMULATED}{CRLF}")
        return 9009
    code, out = prog(ctx, words)
    ctx.out.write(out)
    return code


def run_powershell_args(ctx: WinContext, args: list[str]) -> int:
    """powershell.exe's command line: -EncodedCommand, -Command, -File, or a script on stdin."""
    i = 0
    while i < len(args):
        a = args[i].lower()
        if a in ("-noprofile", "-nop", "-noninteractive", "-nologo", "-noni", "-sta", "-mta"):
            i += 1
            continue
        if a in ("-executionpolicy", "-ep", "-ex", "-inputformat", "-outputformat", "-windowstyle", "-w",
                 "-version", "-configurationname"):
            i += 2
            continue
        if a in ("-encodedcommand", "-enc", "-ec", "-e", "-en", "-encoded"):
            if i + 1 >= len(args):
                ctx.err.write("Missing parameter for -EncodedCommand." + CRLF)
                return 1
            try:
                script = base64.b64decode(args[i + 1]).decode("utf-16-le")
            except (ValueError, UnicodeDecodeError):
                ctx.err.write("Cannot process the command because the value specified with -EncodedCommand is not "
                              "properly encoded. The value must be Base64 encoded." + CRLF)
                return 1
            return PowerShell(ctx, encoded=True).run(script)
        if a in ("-command", "-c"):
            rest = " ".join(args[i + 1:])
            if rest.strip() == "-":
                rest = ctx.stdin.read()
            return PowerShell(ctx).run(rest)
        if a in ("-file", "-f"):
            path = win_path(ctx, args[i + 1]) if i + 1 < len(args) else ""
            text = file_read(ctx, path)
            if text is None:
                ctx.err.write(f"The argument '{args[i + 1] if i + 1 < len(args) else ''}' to the -File parameter does "
                              "not exist. Provide the path to an existing '.ps1' file as an argument to the -File "
                              "parameter." + CRLF)
                return 1
            return PowerShell(ctx).run(text)
        return PowerShell(ctx).run(" ".join(args[i:]))
    return PowerShell(ctx).run(ctx.stdin.read())


def powershell_command(command_line: str) -> bool:
    first = command_line.strip().split(None, 1)[0].lower() if command_line.strip() else ""
    return first.rsplit("\\", 1)[-1].removesuffix(".exe") in ("powershell", "pwsh")


def decode_command_line(command_line: str) -> str:
    """The human-readable form of a command line (``-EncodedCommand`` decoded), for the command log."""
    m = re.search(r"-(?:encodedcommand|enc|ec|e)\s+([A-Za-z0-9+/=]+)", command_line, re.IGNORECASE)
    if m and powershell_command(command_line):
        try:
            return base64.b64decode(m.group(1)).decode("utf-16-le")
        except (ValueError, UnicodeDecodeError):
            return command_line
    return command_line


def run_windows(system: WindowsSystem, hooks: GuestHooks, command_line: str, *, user: str, out: Output,
                err: Output, cancel: threading.Event | None = None, stdin: Input | None = None) -> int:
    """What a WinRM shell does with ``<rsp:Command>``: cmd.exe /c COMMAND_LINE (with %VAR% expansion)."""
    from emulator.guests.simulated import cmdlets  # noqa: F401 - registers the cmdlets

    ctx = WinContext(system, hooks, user, cancel or threading.Event(), out, err, stdin or TextInput(""))
    fault = hooks.take_fault(decode_command_line(command_line))
    if fault is not None:
        hooks.log(f"fault {fault.id} fired for the whole command")
        if fault.hang:
            hang(ctx.cancel, ctx.hooks.lock)
        err.write((fault.stderr or f"injected fault {SIMULATED}").rstrip("\r\n") + CRLF)
        return fault.exit_code
    return run_cmd_line(ctx, command_line)


def run_powershell_script(system: WindowsSystem, hooks: GuestHooks, script: str, *, user: str, out: Output,
                          err: Output, cancel: threading.Event | None = None) -> int:
    """RunPowerShellScript: a script file run by powershell.exe as SYSTEM (or ``user``)."""
    from emulator.guests.simulated import cmdlets  # noqa: F401 - registers the cmdlets

    ctx = WinContext(system, hooks, user, cancel or threading.Event(), out, err)
    return PowerShell(ctx).run(script)


def sleep_scaled(ctx: WinContext, seconds: float) -> None:
    wait(ctx.hooks.duration(seconds), ctx.cancel, ctx.hooks.lock)


def generalized(system: WindowsSystem) -> bool:
    return system.image_state == GENERALIZED


def to_json(value: Any, depth: int = 2, compress: bool = False) -> str:
    def conv(v: Any, d: int) -> Any:
        if isinstance(v, dict):
            return {str(k): conv(x, d - 1) if d > 0 else to_str(x) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x, d) for x in v]
        if isinstance(v, (str, int, float, bool)) or v is None:
            return v
        return to_str(v)

    return json.dumps(conv(value, depth), indent=None if compress else 4).replace("\n", CRLF)
