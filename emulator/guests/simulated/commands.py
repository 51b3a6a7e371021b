"""Programs of the simulated Debian guest (coreutils, apt, systemd, cloud-init, waagent, ...).

Each takes ``(shell, argv, io)`` and returns an exit status, printing what the real program
prints where scripts parse it (``dpkg-query -W``, ``systemctl is-active``, ``id``,
``cloud-init status``). Programs that take time (apt, waagent, sleep) wait a scaled duration
that a dropped client cancels, holding the guest's lock only while they change state.
"""

from __future__ import annotations

import base64
import datetime
import fnmatch
import hashlib
import posixpath
import re

from emulator.guests.simulated import catalog
from emulator.guests.simulated.linux import FsError
from emulator.guests.simulated.session import Buffer, TextInput, wait
from emulator.guests.simulated.shell import IO, Shell, program, signal_power

SIMULATED = "(simulated)"


def _err(io: IO, text: str) -> None:
    io.err.write(text if text.endswith("\n") else text + "\n")


def _flags(args: list[str], with_value: tuple[str, ...] = ()) -> tuple[set[str], dict[str, str], list[str]]:
    """Split ``-abc``/``--long`` flags, options taking a value, and operands."""
    flags: set[str] = set()
    values: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            rest.extend(args[i + 1:])
            break
        if a.startswith("--"):
            name, eq, val = a.partition("=")
            if name in with_value and not eq and i + 1 < len(args):
                values[name] = args[i + 1]
                i += 2
                continue
            if eq:
                values[name] = val
            else:
                flags.add(name)
        elif a.startswith("-") and len(a) > 1 and not a[1:].isdigit():
            j = 1
            while j < len(a):
                f = "-" + a[j]
                if f in with_value:
                    if j + 1 < len(a):
                        values[f] = a[j + 1:]
                    elif i + 1 < len(args):
                        values[f] = args[i + 1]
                        i += 1
                    break
                flags.add(f)
                j += 1
        else:
            rest.append(a)
        i += 1
    return flags, values, rest


def _path(sh: Shell, p: str) -> str:
    return sh.system.norm(p, sh.cwd)


def _touch_changed(sh: Shell) -> None:
    sh.hooks.changed()


def _need_root(sh: Shell, io: IO, message: str, code: int = 1) -> bool:
    if sh.user == "root":
        return True
    _err(io, message)
    return False


# identity ---------------------------------------------------------------------------------
@program("hostname")
def hostname(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, rest = _flags(argv[1:])
    if rest:
        if not _need_root(sh, io, "hostname: you must be root to change the host name"):
            return 1
        sh.system.hostname = rest[0]
        return 0
    if "-I" in flags or "-i" in flags:
        io.out.write("10.0.0.4 \n" if "-I" in flags else "127.0.1.1\n")
        return 0
    io.out.write(sh.system.hostname + "\n")
    return 0


@program("hostnamectl", package="systemd")
def hostnamectl(sh: Shell, argv: list[str], io: IO) -> int:
    _, _, rest = _flags(argv[1:])
    if rest[:1] == ["set-hostname"] and len(rest) > 1:
        if not _need_root(sh, io, "Could not set hostname: Interactive authentication required."):
            return 1
        sh.system.set_hostname(rest[1])
        _touch_changed(sh)
        return 0
    if rest[:1] == ["hostname"]:
        io.out.write(sh.system.hostname + "\n")
        return 0
    rel = sh.system.os.get("release", {})
    io.out.write(f" Static hostname: {sh.system.hostname}\n       Icon name: computer-vm\n"
                 f"         Chassis: vm\n      Machine ID: {sh.system.machine_id()}\n"
                 f"  Virtualization: microsoft\nOperating System: {rel.get('PRETTY_NAME', 'Debian')} {SIMULATED}\n"
                 f"          Kernel: Linux {catalog.KERNEL}\n    Architecture: x86-64\n")
    return 0


@program("uname")
def uname(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, _ = _flags(argv[1:])
    parts = {"-s": "Linux", "-n": sh.system.hostname, "-r": catalog.KERNEL, "-v": catalog.KERNEL_BUILD,
             "-m": "x86_64", "-o": "GNU/Linux"}
    if "-a" in flags or "--all" in flags:
        io.out.write(" ".join(parts.values()) + f" {SIMULATED}\n")
        return 0
    chosen = [v for k, v in parts.items() if k in flags] or ["Linux"]
    io.out.write(" ".join(chosen) + "\n")
    return 0


def _id_line(sh: Shell, name: str) -> str:
    u = sh.system.users[name]
    groups = [f"{u['gid']}({name})"] + [f"{1000 + i}({g})" for i, g in enumerate(u.get("groups", [])) if g != name]
    return f"uid={u['uid']}({name}) gid={u['gid']}({name}) groups={','.join(groups)}"


@program("id")
def id_(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, rest = _flags(argv[1:])
    name = rest[0] if rest else sh.user
    if name not in sh.system.users:
        _err(io, f"id: '{name}': no such user")
        return 1
    u = sh.system.users[name]
    if "-u" in flags:
        io.out.write((name if "-n" in flags else str(u["uid"])) + "\n")
    elif "-g" in flags:
        io.out.write((name if "-n" in flags else str(u["gid"])) + "\n")
    elif "-G" in flags:
        io.out.write(" ".join(u.get("groups", [])) + "\n" if "-n" in flags else str(u["gid"]) + "\n")
    else:
        io.out.write(_id_line(sh, name) + "\n")
    return 0


@program("whoami")
def whoami(sh: Shell, argv: list[str], io: IO) -> int:
    io.out.write(sh.user + "\n")
    return 0


@program("getent")
def getent(sh: Shell, argv: list[str], io: IO) -> int:
    if len(argv) < 2:
        _err(io, "Usage: getent [OPTION...] database [key ...]")
        return 1
    db, keys = argv[1], argv[2:]
    if db in ("passwd", "group", "shadow"):
        if db == "shadow" and sh.user != "root":
            return 2
        lines = sh.system.read(f"/etc/{db}").splitlines()
        if not keys:
            io.out.write("".join(ln + "\n" for ln in lines))
            return 0
        status = 0
        for k in keys:
            found = [ln for ln in lines if ln.split(":")[0] == k or (len(ln.split(":")) > 2 and ln.split(":")[2] == k)]
            if found:
                io.out.write(found[0] + "\n")
            else:
                status = 2
        return status
    if db in ("hosts", "ahosts"):
        status = 0
        for k in keys:
            if k in ("localhost", sh.system.hostname):
                io.out.write(f"{'127.0.0.1' if k == 'localhost' else '127.0.1.1'}       {k}\n")
            else:
                status = 2
        return status
    _err(io, f"Unknown database: {db}")
    return 1


# files --------------------------------------------------------------------------------------
@program("cat")
def cat(sh: Shell, argv: list[str], io: IO) -> int:
    _, _, files = _flags(argv[1:])
    if not files:
        io.out.write(io.stdin.read())
        return 0
    status = 0
    for f in files:
        if f == "-":
            io.out.write(io.stdin.read())
            continue
        try:
            io.out.write(sh.system.read(_path(sh, f), sh.user))
        except FsError as exc:
            _err(io, f"cat: {f}: {exc}")
            status = 1
    return status


@program("tee")
def tee(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, files = _flags(argv[1:])
    data = io.stdin.read()
    io.out.write(data)
    status = 0
    for f in files:
        try:
            sh.system.write(_path(sh, f), data, user=sh.user, append="-a" in flags or "--append" in flags)
        except FsError as exc:
            _err(io, f"tee: {f}: {exc}")
            status = 1
    _touch_changed(sh)
    return status


@program("touch")
def touch(sh: Shell, argv: list[str], io: IO) -> int:
    _, _, files = _flags(argv[1:], ("-d", "-t", "-r"))
    status = 0
    for f in files:
        p = _path(sh, f)
        if sh.system.exists(p):
            continue
        try:
            sh.system.write(p, "", user=sh.user)
        except FsError as exc:
            _err(io, f"touch: cannot touch '{f}': {exc}")
            status = 1
    _touch_changed(sh)
    return status


def _mode(text: str, current: int) -> int:
    if re.fullmatch(r"[0-7]{3,4}", text):
        return int(text, 8)
    mode = current
    for clause in text.split(","):
        m = re.fullmatch(r"([ugoa]*)([+\-=])([rwxXst]*)", clause)
        if not m:
            raise ValueError(text)
        who, op, perms = m.groups()
        who = who or "a"
        bits = 0
        for w in ("u", "g", "o"):
            if w in who or "a" in who:
                shift = {"u": 6, "g": 3, "o": 0}[w]
                for p, v in (("r", 4), ("w", 2), ("x", 1), ("X", 1)):
                    if p in perms:
                        bits |= v << shift
        if op == "+":
            mode |= bits
        elif op == "-":
            mode &= ~bits
        else:
            mode = (mode & ~0o777) | bits
    return mode


@program("mkdir")
def mkdir(sh: Shell, argv: list[str], io: IO) -> int:
    flags, values, dirs = _flags(argv[1:], ("-m", "--mode"))
    mode = int(values.get("-m", values.get("--mode", "755")), 8)
    status = 0
    for d in dirs:
        try:
            sh.system.mkdir(_path(sh, d), user=sh.user, parents="-p" in flags or "--parents" in flags, mode=mode)
        except FsError as exc:
            _err(io, f"mkdir: cannot create directory '{d}': {exc}")
            status = 1
    _touch_changed(sh)
    return status


@program("rm")
def rm(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, files = _flags(argv[1:])
    force = "-f" in flags or "--force" in flags
    recursive = bool({"-r", "-R", "--recursive"} & flags)
    status = 0
    for f in files:
        p = _path(sh, f)
        if not sh.system.exists(p):
            if not force:
                _err(io, f"rm: cannot remove '{f}': No such file or directory")
                status = 1
            continue
        try:
            sh.system.remove(p, user=sh.user, recursive=recursive)
        except FsError as exc:
            _err(io, f"rm: cannot remove '{f}': {exc}")
            status = 1
    _touch_changed(sh)
    return status


@program("rmdir")
def rmdir(sh: Shell, argv: list[str], io: IO) -> int:
    status = 0
    for d in _flags(argv[1:])[2]:
        p = _path(sh, d)
        try:
            if sh.system.listdir(p):
                raise FsError("Directory not empty")
            sh.system.remove(p, user=sh.user, recursive=True)
        except FsError as exc:
            _err(io, f"rmdir: failed to remove '{d}': {exc}")
            status = 1
    return status


def _copy(sh: Shell, src: str, dst: str, recursive: bool) -> None:
    if sh.system.is_dir(src):
        if not recursive:
            raise FsError(f"-r not specified; omitting directory '{src}'")
        sh.system.mkdir(dst, user=sh.user, parents=True)
        for name in sh.system.listdir(src):
            _copy(sh, f"{src.rstrip('/')}/{name}", f"{dst.rstrip('/')}/{name}", True)
        return
    data = sh.system.read_bytes(src, sh.user)
    mode = sh.system.mode_of(src)
    sh.system.write(dst, data, user=sh.user, mode=mode)


def _install_dirs(sh: Shell, dirs: list[str], mode: int, io: IO) -> int:
    status = 0
    for d in dirs:
        try:
            sh.system.mkdir(_path(sh, d), user=sh.user, parents=True, mode=mode)
        except FsError as exc:
            _err(io, f"install: cannot create directory '{d}': {exc}")
            status = 1
    _touch_changed(sh)
    return status


@program("cp", "mv", "install")
def cp(sh: Shell, argv: list[str], io: IO) -> int:
    flags, values, args = _flags(argv[1:], ("-m", "-o", "-g", "-t"))
    if argv[0] == "install" and ("-d" in flags or "--directory" in flags):  # install -d: mkdir -p with a mode
        return _install_dirs(sh, args, int(values.get("-m", "755"), 8), io)
    if len(args) < 2:
        _err(io, f"{argv[0]}: missing destination file operand")
        return 1
    *sources, dest = args
    dest_path = _path(sh, dest)
    recursive = argv[0] == "mv" or bool({"-r", "-R", "-a", "--recursive", "--archive"} & flags)
    status = 0
    for s in sources:
        src = _path(sh, s)
        target = f"{dest_path.rstrip('/')}/{posixpath.basename(src)}" if sh.system.is_dir(dest_path) else dest_path
        try:
            if not sh.system.exists(src):
                raise FsError("No such file or directory")
            _copy(sh, src, target, recursive)
            if "-m" in values:
                sh.system.files[target]["mode"] = int(values["-m"], 8)
            if argv[0] == "mv":
                sh.system.remove(src, user=sh.user, recursive=True)
        except FsError as exc:
            _err(io, f"{argv[0]}: cannot {'move' if argv[0] == 'mv' else 'stat'} '{s}': {exc}")
            status = 1
    _touch_changed(sh)
    return status


@program("ln")
def ln(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, args = _flags(argv[1:])
    if len(args) != 2:
        _err(io, "ln: missing file operand")
        return 1
    target, link = args
    path = _path(sh, link)
    if sh.system.is_dir(path):
        path = f"{path.rstrip('/')}/{posixpath.basename(target)}"
    if sh.system.exists(path) and not ({"-f", "--force", "-sf", "-fs"} & flags or "-f" in "".join(flags)):
        _err(io, f"ln: failed to create symbolic link '{link}': File exists")
        return 1
    if not sh.system.can_write(sh.user, path):
        _err(io, f"ln: failed to create symbolic link '{link}': Permission denied")
        return 1
    sh.system.files[path] = {"link": target, "data": "", "mode": 0o777, "owner": sh.user}
    _touch_changed(sh)
    return 0


@program("chmod")
def chmod(sh: Shell, argv: list[str], io: IO) -> int:
    args = [a for a in argv[1:] if a not in ("-R", "-f", "-v", "--recursive")]
    if len(args) < 2:
        _err(io, "chmod: missing operand")
        return 1
    status = 0
    for f in args[1:]:
        p = _path(sh, f)
        entry = sh.system.files.get(p) or sh.system.dirs.get(p)
        if entry is None:
            _err(io, f"chmod: cannot access '{f}': No such file or directory")
            status = 1
            continue
        if sh.user != "root" and entry.get("owner") != sh.user:
            _err(io, f"chmod: changing permissions of '{f}': Operation not permitted")
            status = 1
            continue
        try:
            entry["mode"] = _mode(args[0], int(entry.get("mode", 0o644)))
        except ValueError:
            _err(io, f"chmod: invalid mode: '{args[0]}'")
            return 1
    _touch_changed(sh)
    return status


@program("chown", "chgrp")
def chown(sh: Shell, argv: list[str], io: IO) -> int:
    args = [a for a in argv[1:] if not a.startswith("-")]
    if len(args) < 2:
        _err(io, f"{argv[0]}: missing operand")
        return 1
    owner = args[0].split(":")[0].split(".")[0]
    status = 0
    recursive = any(a in ("-R", "--recursive") for a in argv[1:])
    for f in args[1:]:
        p = _path(sh, f)
        if not sh.system.exists(p):
            _err(io, f"{argv[0]}: cannot access '{f}': No such file or directory")
            status = 1
            continue
        if sh.user != "root":
            _err(io, f"{argv[0]}: changing ownership of '{f}': Operation not permitted")
            status = 1
            continue
        if argv[0] == "chgrp" or not owner:
            continue
        if owner not in sh.system.users and not owner.isdigit():
            _err(io, f"chown: invalid user: '{args[0]}'")
            return 1
        targets = [p]
        if recursive:
            targets += [q for q in list(sh.system.files) + list(sh.system.dirs) if q.startswith(p.rstrip("/") + "/")]
        for q in targets:
            entry = sh.system.files.get(q) or sh.system.dirs.get(q)
            if entry is not None:
                entry["owner"] = owner
            elif q in sh.system.dirs or sh.system.is_dir(q):
                sh.system.dirs[q] = {"mode": 0o755, "owner": owner}
    _touch_changed(sh)
    return status


@program("ls")
def ls(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, paths = _flags(argv[1:])
    status = 0
    long = "-l" in flags
    show_all = "-a" in flags or "-A" in flags
    for p in paths or ["."]:
        full = _path(sh, p)
        if not sh.system.exists(full):
            _err(io, f"ls: cannot access '{p}': No such file or directory")
            status = 2
            continue
        names = [p] if sh.system.is_file(full) else sh.system.listdir(full)
        if not show_all:
            names = [n for n in names if not n.startswith(".")]
        if not sh.system.is_file(full) and not sh.system.can_read(sh.user, full + "/x"):
            _err(io, f"ls: cannot open directory '{p}': Permission denied")
            status = 2
            continue
        for n in names:
            if long:
                q = full if sh.system.is_file(full) else f"{full.rstrip('/')}/{n}"
                kind = "d" if sh.system.is_dir(q) else "-"
                mode = sh.system.mode_of(q)
                perms = "".join(c if mode & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))
                size = len(sh.system.read_bytes(q)) if kind == "-" and q in sh.system.files else 4096
                owner = sh.system.owner_of(q)
                io.out.write(f"{kind}{perms} 1 {owner} {owner} {size:>6} Jan  1 00:00 {n}\n")
            else:
                io.out.write(n + "\n")
    return status


@program("truncate")
def truncate(sh: Shell, argv: list[str], io: IO) -> int:
    _, values, files = _flags(argv[1:], ("-s", "--size"))
    size = values.get("-s", values.get("--size"))
    if size is None or not re.fullmatch(r"\d+", size):
        _err(io, "truncate: you must specify either '--size' or '--reference'")
        return 1
    n = int(size)
    status = 0
    for f in files:
        p = _path(sh, f)
        try:
            data = sh.system.read_bytes(p, sh.user) if sh.system.is_file(p) else b""
            sh.system.write(p, data[:n] + b"\0" * max(0, n - len(data)), user=sh.user)
        except FsError as exc:
            _err(io, f"truncate: cannot open '{f}' for writing: {exc}")
            status = 1
    _touch_changed(sh)
    return status


def _inputs(sh: Shell, io: IO, files: list[str], name: str) -> tuple[list[tuple[str, str]], int]:
    if not files:
        return [("-", io.stdin.read())], 0
    out, status = [], 0
    for f in files:
        if f == "-":
            out.append((f, io.stdin.read()))
            continue
        try:
            out.append((f, sh.system.read(_path(sh, f), sh.user)))
        except FsError as exc:
            _err(io, f"{name}: {f}: {exc}")
            status = 2 if name == "grep" else 1
    return out, status


@program("grep", "egrep", "fgrep")
def grep(sh: Shell, argv: list[str], io: IO) -> int:
    flags, values, args = _flags(argv[1:], ("-e", "-m", "-A", "-B", "-C"))
    if "-e" in values:
        pattern, files = values["-e"], args
    elif args:
        pattern, files = args[0], args[1:]
    else:
        _err(io, "Usage: grep [OPTION]... PATTERNS [FILE]...")
        return 2
    fixed = "-F" in flags or argv[0] == "fgrep"
    extended = "-E" in flags or argv[0] == "egrep"
    regex = re.escape(pattern) if fixed else pattern if extended else _bre(pattern)
    if "-w" in flags:
        regex = rf"\b(?:{regex})\b"
    if "-x" in flags:
        regex = rf"^(?:{regex})$"
    try:
        rx = re.compile(regex, re.IGNORECASE if "-i" in flags else 0)
    except re.error:
        _err(io, f"grep: Invalid regular expression: {pattern}")
        return 2
    inputs, status = _inputs(sh, io, files, "grep")
    found = 0
    for name, text in inputs:
        count = 0
        for n, line in enumerate(text.splitlines(), 1):
            hit = bool(rx.search(line)) != ("-v" in flags)
            if not hit:
                continue
            count += 1
            if "-q" in flags or "-c" in flags or "-l" in flags:
                continue
            prefix = f"{name}:" if len(inputs) > 1 else ""
            prefix += f"{n}:" if "-n" in flags else ""
            io.out.write(prefix + (rx.search(line).group(0) if "-o" in flags and rx.search(line) else line) + "\n")  # type: ignore[union-attr]
        if "-c" in flags:
            io.out.write((f"{name}:" if len(inputs) > 1 else "") + f"{count}\n")
        if "-l" in flags and count:
            io.out.write(name + "\n")
        found += count
    if status and "-s" not in flags:
        return status
    return 0 if found else 1


def _bre(pattern: str) -> str:
    """POSIX basic regex -> Python: ``\\( \\) \\{ \\} \\+ \\? \\|`` are operators, bare ones literals."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(nxt if nxt in "(){}+?|" else "\\" + nxt)
            i += 2
            continue
        out.append("\\" + c if c in "(){}+?|" else c)
        i += 1
    return "".join(out)


@program("head", "tail")
def head(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    n = 10
    files = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-n" and i + 1 < len(args):
            n = int(args[i + 1].lstrip("+-"))
            i += 2
            continue
        if re.fullmatch(r"-n?\d+", a):
            n = int(a.lstrip("-n"))
        elif a.startswith("-"):
            pass
        else:
            files.append(a)
        i += 1
    inputs, status = _inputs(sh, io, files, argv[0])
    for _, text in inputs:
        lines = text.splitlines(keepends=True)
        io.out.write("".join(lines[:n] if argv[0] == "head" else lines[-n:] if n else []))
    return status


@program("wc")
def wc(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, files = _flags(argv[1:])
    inputs, status = _inputs(sh, io, files, "wc")
    for name, text in inputs:
        counts = {"-l": text.count("\n"), "-w": len(text.split()), "-c": len(text.encode())}
        chosen = [str(v) for k, v in counts.items() if k in flags] or [str(v) for v in counts.values()]
        io.out.write(" ".join(chosen) + (f" {name}" if name != "-" else "") + "\n")
    return status


def _numeric_key(line: str) -> float:
    m = re.match(r"\s*(-?\d+(?:\.\d+)?)", line)
    return float(m.group(1)) if m else 0.0


@program("sort")
def sort(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, files = _flags(argv[1:], ("-k", "-t"))
    inputs, status = _inputs(sh, io, files, "sort")
    lines = [ln for _, t in inputs for ln in t.splitlines()]
    if "-n" in flags:
        lines.sort(key=_numeric_key, reverse="-r" in flags)
    else:
        lines.sort(reverse="-r" in flags)
    if "-u" in flags:
        lines = list(dict.fromkeys(lines))
    io.out.write("".join(ln + "\n" for ln in lines))
    return status


@program("uniq")
def uniq(sh: Shell, argv: list[str], io: IO) -> int:
    inputs, status = _inputs(sh, io, _flags(argv[1:])[2], "uniq")
    prev = None
    for _, text in inputs:
        for ln in text.splitlines():
            if ln != prev:
                io.out.write(ln + "\n")
            prev = ln
    return status


@program("cut")
def cut(sh: Shell, argv: list[str], io: IO) -> int:
    _, values, files = _flags(argv[1:], ("-d", "-f", "-c"))
    inputs, status = _inputs(sh, io, files, "cut")
    delim = values.get("-d", "\t")
    spec = values.get("-f") or values.get("-c") or "1"
    wanted: list[int] = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        lo = int(a) if a else 1
        hi = int(b) if b else (lo if not _ else 10_000)
        wanted.extend(range(lo, hi + 1))
    for _, text in inputs:
        for ln in text.splitlines():
            if "-c" in values:
                io.out.write("".join(ln[i - 1] for i in wanted if i <= len(ln)) + "\n")
            else:
                fields = ln.split(delim)
                io.out.write(delim.join(fields[i - 1] for i in wanted if i <= len(fields)) + "\n")
    return status


@program("tr")
def tr(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, sets = _flags(argv[1:])
    text = io.stdin.read()

    def expand(s: str) -> str:
        s = s.encode().decode("unicode_escape")
        s = s.replace("[:upper:]", "ABCDEFGHIJKLMNOPQRSTUVWXYZ").replace("[:lower:]", "abcdefghijklmnopqrstuvwxyz")
        s = s.replace("[:space:]", " \t\n\r\f\v").replace("[:digit:]", "0123456789")
        return re.sub(r"(.)-(.)", lambda m: "".join(chr(c) for c in range(ord(m.group(1)), ord(m.group(2)) + 1)), s)

    if "-d" in flags and sets:
        io.out.write(text.translate({ord(c): None for c in expand(sets[0])}))
    elif len(sets) >= 2:
        a, b = expand(sets[0]), expand(sets[1])
        b = b + b[-1:] * (len(a) - len(b))
        io.out.write(text.translate({ord(x): y for x, y in zip(a, b, strict=False)}))
    else:
        io.out.write(text)
    return 0


@program("sed")
def sed(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    scripts: list[str] = []
    files: list[str] = []
    in_place = False
    extended = False
    quiet = False
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-e", "--expression") and i + 1 < len(args):
            scripts.append(args[i + 1])
            i += 2
            continue
        if a.startswith("-i") or a.startswith("--in-place"):
            in_place = True
        elif a in ("-E", "-r", "--regexp-extended"):
            extended = True
        elif a in ("-n", "--quiet"):
            quiet = True
        elif a.startswith("-") and len(a) > 1:
            if "i" in a[1:]:
                in_place = True
            extended = extended or "E" in a or "r" in a
            quiet = quiet or "n" in a[1:]
        elif not scripts:
            scripts.append(a)
        else:
            files.append(a)
        i += 1
    try:
        ops = [op for s in scripts for op in _sed_ops(s, extended)]
    except ValueError as exc:
        _err(io, f"sed: -e expression #1: {exc}")
        return 1
    inputs, status = _inputs(sh, io, files, "sed")
    for name, text in inputs:
        out = []
        for line in text.splitlines():
            keep = True
            printed = []
            for kind, rx, rep, count in ops:
                if kind == "d" and rx.search(line):
                    keep = False
                    break
                if kind == "s":
                    line = rx.sub(rep, line, count=count)
                if kind == "p" and rx.search(line):
                    printed.append(line)
            if keep and not quiet:
                out.append(line + "\n")
            out.extend(p + "\n" for p in printed)
        result = "".join(out)
        if in_place and name != "-":
            try:
                sh.system.write(_path(sh, name), result, user=sh.user)
            except FsError as exc:
                _err(io, f"sed: couldn't open temporary file {name}: {exc}")
                status = 4
        else:
            io.out.write(result)
    _touch_changed(sh)
    return status


def _sed_ops(script: str, extended: bool) -> list[tuple[str, re.Pattern[str], str, int]]:
    ops = []
    for cmd in (c.strip() for c in re.split(r";\s*(?=[s/])", script) if c.strip()):
        if cmd.startswith("s") and len(cmd) > 1:
            delim = cmd[1]
            parts = re.split(rf"(?<!\\){re.escape(delim)}", cmd[2:])
            if len(parts) < 3:
                raise ValueError(f"unterminated `s' command: {cmd}")
            pat, rep, fl = parts[0], parts[1], parts[2]
            regex = pat if extended else _bre(pat)
            rep = re.sub(r"(?<!\\)&", r"\\g<0>", rep)
            ops.append(("s", re.compile(regex, re.IGNORECASE if "I" in fl or "i" in fl else 0), rep,
                        0 if "g" in fl else 1))
        elif cmd.startswith("/") and cmd[-1] in "dp":
            pat = cmd[1:cmd.rindex("/")]
            ops.append((cmd[-1], re.compile(pat if extended else _bre(pat)), "", 0))
        else:
            raise ValueError(f"unknown command: `{cmd[:1]}'")
    return ops


@program("find")
def find(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    roots = []
    while args and not args[0].startswith("-") and args[0] not in ("!", "("):
        roots.append(args.pop(0))
    name_pat = None
    kind = None
    delete = False
    exec_cmd: list[str] | None = None
    maxdepth = None
    while args:
        a = args.pop(0)
        if a in ("-name", "-iname") and args:
            name_pat = args.pop(0)
        elif a == "-type" and args:
            kind = args.pop(0)
        elif a == "-maxdepth" and args:
            maxdepth = int(args.pop(0))
        elif a == "-delete":
            delete = True
        elif a == "-exec":
            exec_cmd = []
            while args and args[0] not in (";", "+"):
                exec_cmd.append(args.pop(0))
            if args:
                args.pop(0)
    status = 0
    for root in roots or ["."]:
        base = _path(sh, root)
        if not sh.system.exists(base):
            _err(io, f"find: '{root}': No such file or directory")
            status = 1
            continue
        found = [base, *sorted(p for p in list(sh.system.files) + list(sh.system.dirs) if p.startswith(base.rstrip("/") + "/"))]
        for p in dict.fromkeys(found):
            depth = p[len(base):].count("/")
            if maxdepth is not None and depth > maxdepth:
                continue
            if name_pat and not fnmatch.fnmatch(posixpath.basename(p), name_pat):
                continue
            if (kind == "f" and not sh.system.is_file(p)) or (kind == "d" and not sh.system.is_dir(p)):
                continue
            shown = p if root.startswith("/") else root.rstrip("/") + p[len(base):]
            if delete:
                if sh.system.exists(p):
                    sh.system.remove(p, user=sh.user, recursive=True)
            elif exec_cmd is not None:
                sh.run_argv([shown if x == "{}" else x for x in exec_cmd], io)
            else:
                io.out.write(shown + "\n")
    _touch_changed(sh)
    return status


@program("basename", "dirname")
def basename(sh: Shell, argv: list[str], io: IO) -> int:
    if len(argv) < 2:
        _err(io, f"{argv[0]}: missing operand")
        return 1
    p = argv[1].rstrip("/") or "/"
    if argv[0] == "dirname":
        io.out.write((posixpath.dirname(p) or ".") + "\n")
    else:
        name = posixpath.basename(p)
        if len(argv) > 2 and name.endswith(argv[2]):
            name = name[: -len(argv[2])]
        io.out.write(name + "\n")
    return 0


@program("seq")
def seq(sh: Shell, argv: list[str], io: IO) -> int:
    nums = [int(a) for a in argv[1:]]
    lo, step, hi = (1, 1, nums[0]) if len(nums) == 1 else (nums[0], 1, nums[1]) if len(nums) == 2 else tuple(nums[:3])
    io.out.write("".join(f"{i}\n" for i in range(lo, hi + 1 if step > 0 else hi - 1, step)))
    return 0


@program("base64")
def base64_(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, files = _flags(argv[1:], ("-w",))
    inputs, status = _inputs(sh, io, files, "base64")
    for _, text in inputs:
        if "-d" in flags or "--decode" in flags:
            io.out.write(base64.b64decode("".join(text.split())).decode(errors="replace"))
        else:
            io.out.write(base64.b64encode(text.encode()).decode() + "\n")
    return status


@program("sha256sum", "md5sum", "sha1sum")
def checksum(sh: Shell, argv: list[str], io: IO) -> int:
    algo = {"sha256sum": "sha256", "md5sum": "md5", "sha1sum": "sha1"}[argv[0]]
    files = _flags(argv[1:])[2] or ["-"]
    status = 0
    for f in files:
        try:
            data = io.stdin.read().encode() if f == "-" else sh.system.read_bytes(_path(sh, f), sh.user)
        except FsError as exc:
            _err(io, f"{argv[0]}: {f}: {exc}")
            status = 1
            continue
        io.out.write(f"{hashlib.new(algo, data).hexdigest()}  {f}\n")
    return status


@program("test", "[", "[[")
def test(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    closer = {"[": "]", "[[": "]]"}.get(argv[0])
    if closer:
        if not args or args[-1] != closer:
            _err(io, f"{sh.name}: {argv[0]}: missing `{closer}'")
            return 2
        args = args[:-1]
    try:
        return 0 if _test_expr(sh, args, argv[0] == "[[") else 1
    except ValueError as exc:
        _err(io, f"{sh.name}: {argv[0]}: {exc}")
        return 2


def _test_expr(sh: Shell, args: list[str], extended: bool) -> bool:
    if not args:
        return False
    if "-o" in args:
        i = args.index("-o")
        return _test_expr(sh, args[:i], extended) or _test_expr(sh, args[i + 1:], extended)
    if "-a" in args[1:] and len(args) > 3:
        i = args.index("-a", 1)
        return _test_expr(sh, args[:i], extended) and _test_expr(sh, args[i + 1:], extended)
    if args[0] == "!":
        return not _test_expr(sh, args[1:], extended)
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, operand = args
        p = _path(sh, operand) if operand else ""
        s = sh.system
        checks = {
            "-e": lambda: s.exists(p), "-a": lambda: s.exists(p), "-f": lambda: s.is_file(p) and not s.is_dir(p),
            "-d": lambda: s.is_dir(p), "-s": lambda: s.is_file(p) and bool(s.read_bytes(p)),
            "-r": lambda: s.exists(p) and s.can_read(sh.user, p), "-w": lambda: s.exists(p) and s.can_write(sh.user, p),
            "-x": lambda: s.exists(p) and bool(s.mode_of(p) & 0o111), "-L": lambda: "link" in s.files.get(p, {}),
            "-h": lambda: "link" in s.files.get(p, {}), "-z": lambda: operand == "", "-n": lambda: operand != "",
        }
        if op not in checks:
            raise ValueError(f"{op}: unary operator expected")
        return bool(checks[op]())
    if len(args) == 3:
        a, op, b = args
        if op in ("=", "=="):
            return fnmatch.fnmatchcase(a, b) if extended else a == b
        if op == "!=":
            return not fnmatch.fnmatchcase(a, b) if extended else a != b
        if op == "=~" and extended:
            return re.search(b, a) is not None
        if op in ("<", ">"):
            return a < b if op == "<" else a > b
        ints = {"-eq": lambda x, y: x == y, "-ne": lambda x, y: x != y, "-lt": lambda x, y: x < y,
                "-le": lambda x, y: x <= y, "-gt": lambda x, y: x > y, "-ge": lambda x, y: x >= y}
        if op in ints:
            try:
                return bool(ints[op](int(a), int(b)))
            except ValueError:
                raise ValueError(f"{a if not a.lstrip('-').isdigit() else b}: integer expression expected") from None
        raise ValueError(f"{op}: binary operator expected")
    raise ValueError("too many arguments")


@program("sleep", locked=False)
def sleep(sh: Shell, argv: list[str], io: IO) -> int:
    total = 0.0
    for a in argv[1:]:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", a)
        if not m:
            _err(io, f"sleep: invalid time interval '{a}'")
            return 1
        total += float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    wait(sh.hooks.duration(total), sh.cancel, sh.hooks.lock)
    return 0


@program("date")
def date(sh: Shell, argv: list[str], io: IO) -> int:
    now = datetime.datetime.now(datetime.UTC)
    fmt = next((a[1:] for a in argv[1:] if a.startswith("+")), "%a %b %e %H:%M:%S UTC %Y")
    io.out.write(now.strftime(fmt.replace("%s", str(int(now.timestamp())))) + "\n")
    return 0


@program("sync", "ldconfig")
def sync(sh: Shell, argv: list[str], io: IO) -> int:
    return 0


@program("lsb_release")
def lsb_release(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, _ = _flags(argv[1:])
    rel = sh.system.os.get("release", {})
    rows = {"-i": ("Distributor ID", "Debian"), "-d": ("Description", rel.get("PRETTY_NAME", "")),
            "-r": ("Release", rel.get("VERSION_ID", "")), "-c": ("Codename", rel.get("VERSION_CODENAME", ""))}
    chosen = [k for k in rows if k in flags] or (list(rows) if "-a" in flags else ["-d"])
    for k in chosen:
        label, value = rows[k]
        io.out.write((value if "-s" in flags else f"{label}:\t{value}") + "\n")
    if "-s" not in flags:
        io.err.write("No LSB modules are available.\n")
    return 0


# accounts -----------------------------------------------------------------------------------
@program("useradd", "adduser")
def useradd(sh: Shell, argv: list[str], io: IO) -> int:
    flags, values, rest = _flags(argv[1:], ("-s", "-G", "-g", "-c", "-d", "-u", "--shell", "--gecos"))
    if not rest:
        _err(io, f"Usage: {argv[0]} [options] LOGIN")
        return 2
    if not _need_root(sh, io, f"{argv[0]}: Permission denied.\n{argv[0]}: cannot lock /etc/passwd; try again later."):
        return 1
    name = rest[0]
    if name in sh.system.users:
        _err(io, f"{argv[0]}: user '{name}' already exists")
        return 9
    groups = [g for g in values.get("-G", "").split(",") if g]
    sh.system.add_user(name, groups=groups, shell=values.get("-s", values.get("--shell", "/bin/sh")),
                       create_home="-m" in flags or argv[0] == "adduser")
    _touch_changed(sh)
    return 0


@program("userdel", "deluser")
def userdel(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, rest = _flags(argv[1:])
    if not rest:
        _err(io, f"Usage: {argv[0]} [options] LOGIN")
        return 2
    if not _need_root(sh, io, f"{argv[0]}: Permission denied."):
        return 1
    if not sh.system.delete_user(rest[0], remove_home=bool({"-r", "--remove", "--remove-home"} & flags)):
        _err(io, f"{argv[0]}: user '{rest[0]}' does not exist")
        return 6
    _touch_changed(sh)
    return 0


@program("usermod")
def usermod(sh: Shell, argv: list[str], io: IO) -> int:
    flags, values, rest = _flags(argv[1:], ("-G", "-s", "-g"))
    if not rest or rest[0] not in sh.system.users:
        _err(io, f"usermod: user '{rest[0] if rest else ''}' does not exist")
        return 6
    if not _need_root(sh, io, "usermod: Permission denied."):
        return 1
    user = sh.system.users[rest[0]]
    if "-G" in values:
        new = [g for g in values["-G"].split(",") if g]
        user["groups"] = list(dict.fromkeys(([*user["groups"], *new]) if "-a" in flags else [rest[0], *new]))
    if "-s" in values:
        user["shell"] = values["-s"]
    if "-L" in flags:
        user["password"] = "!" + str(user.get("password", "")).lstrip("!")
    _touch_changed(sh)
    return 0


@program("passwd")
def passwd(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, rest = _flags(argv[1:])
    name = rest[0] if rest else sh.user
    if name not in sh.system.users:
        _err(io, f"passwd: user '{name}' does not exist")
        return 1
    if name != sh.user and sh.user != "root":
        _err(io, f"passwd: You may not view or modify password information for {name}.")
        return 1
    user = sh.system.users[name]
    if "-l" in flags:
        user["password"] = "!" + str(user.get("password", "")).lstrip("!")
        io.out.write("passwd: password changed.\n")
    elif "-d" in flags:
        user["password"] = ""
        io.out.write("passwd: password changed.\n")
    else:
        _err(io, "passwd: Authentication token manipulation error\npasswd: password unchanged")
        return 10
    _touch_changed(sh)
    return 0


@program("chpasswd")
def chpasswd(sh: Shell, argv: list[str], io: IO) -> int:
    from emulator.guests.simulated.linux import hash_password

    if not _need_root(sh, io, "chpasswd: Permission denied."):
        return 1
    for line in io.stdin.read().splitlines():
        name, _, pw = line.partition(":")
        if name in sh.system.users:
            sh.system.users[name]["password"] = hash_password(pw)
    _touch_changed(sh)
    return 0


@program("ssh-keygen", package="openssh-client")
def ssh_keygen(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, _ = _flags(argv[1:], ("-t", "-f", "-N", "-C", "-b"))
    if "-A" in flags:
        if not _need_root(sh, io, "ssh-keygen: generating new host keys: Permission denied"):
            return 1
        from emulator.guests.simulated.linux import HOST_KEY_TYPES

        if not all(f"/etc/ssh/ssh_host_{k}_key" in sh.system.files for k in HOST_KEY_TYPES):
            sh.system._write_host_keys()
            io.out.write("ssh-keygen: generating new host keys: ED25519 ECDSA\n")
        _touch_changed(sh)
        return 0
    io.err.write(f"simulated guest: '{' '.join(argv)}' ran without effect\n")
    return 0


# packages -----------------------------------------------------------------------------------
APT_LOCK_LISTS = ("E: Could not open lock file /var/lib/apt/lists/lock - open (13: Permission denied)\n"
                  "E: Unable to lock directory /var/lib/apt/lists/")
APT_LOCK_DPKG = ("E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\n"
                 "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?")


APT_SIMULATE = frozenset({"-s", "--simulate", "--just-print", "--dry-run", "--recon", "--no-act"})
APT_SIMULATION_NOTE = ("NOTE: This is only a simulation!\n      apt-get needs root privileges for real execution.\n"
                       "      Keep also in mind that locking is deactivated,\n"
                       "      so don't depend on the relevance to the real current situation!\n")
APT_UPDATES_SUITE = "bookworm-security"  # the simulated archive's monthly updates are +deb12uN security uploads


def _apt_simulation(io: IO, changes: list[tuple[str, str, str]]) -> None:
    """``Inst``/``Remv``/``Conf`` lines, as ``apt-get -s`` prints them after its summary."""
    for name, old, version in changes:
        if not version:
            io.out.write(f"Remv {name} [{old}]\n")
        elif old:
            io.out.write(f"Inst {name} [{old}] ({version} Debian-Security:12/stable-security [amd64])\n")
        else:
            io.out.write(f"Inst {name} ({version} Debian:12/stable [amd64])\n")
    for name, old, version in changes:
        if version:
            origin = "Debian-Security:12/stable-security" if old else "Debian:12/stable"
            io.out.write(f"Conf {name} ({version} {origin} [amd64])\n")


@program("apt-get", "apt", package="apt", locked=False)
def apt_get(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, rest = _flags(argv[1:], ("-o", "-t", "-c"))
    if argv[0] == "apt":
        io.err.write("\nWARNING: apt does not have a stable CLI interface. Use with caution in scripts.\n\n")
    if not rest:
        _err(io, "E: Invalid operation" if argv[0] == "apt-get" else "apt 2.6.1 (amd64)")
        return 100 if argv[0] == "apt-get" else 1
    action, names = rest[0], rest[1:]
    yes = bool({"-y", "--yes", "--assume-yes", "-qy", "-yq"} & flags) or "-y" in "".join(flags)
    simulate = bool(APT_SIMULATE & flags)
    system = sh.system
    if action == "list" and argv[0] == "apt":
        with sh.locked():
            if {"--upgradable", "--upgradeable"} & flags:  # against the lists of the last apt-get update
                lists = int(system.os.get("apt", {}).get("lists_serial", 0))
                for n, current, candidate in system.upgradable(lists):
                    io.out.write(f"{n}/{APT_UPDATES_SUITE} {candidate} amd64 [upgradable from: {current}]\n")
                return 0
            for n, v in sorted(system.packages.items()):
                io.out.write(f"{n}/bookworm,now {v} amd64 [installed]\n")
        return 0
    if action in ("clean", "autoclean"):
        if not _need_root(sh, io, APT_LOCK_LISTS.replace("lists/lock", "archives/lock")):
            return 100
        return 0
    if action in ("update", "install", "upgrade", "dist-upgrade", "full-upgrade", "remove", "purge", "autoremove",
                  "reinstall"):
        if sh.user != "root" and not (simulate and action != "update"):
            _err(io, APT_LOCK_LISTS if action == "update" else APT_LOCK_DPKG)
            return 100
    else:
        _err(io, f"E: Invalid operation {action}")
        return 100
    if action == "update":
        serial = sh.hooks.archive_serial()
        io.out.write(f"Hit:1 {catalog.MIRROR} bookworm InRelease\nGet:2 {catalog.MIRROR} bookworm-updates InRelease "
                     f"[55.4 kB]\nGet:3 {catalog.MIRROR}-security bookworm-security InRelease [48.0 kB]\n")
        wait(sh.hooks.duration(6), sh.cancel, sh.hooks.lock)
        with sh.locked():
            system.os.setdefault("apt", {})["lists_serial"] = serial
            upgradable = len(system.upgradable(serial))
        io.out.write("Fetched 103 kB in 1s (142 kB/s)\nReading package lists...\n")
        if argv[0] == "apt":
            io.out.write(f"{upgradable} packages can be upgraded. Run 'apt list --upgradable' to see them.\n"
                         if upgradable else "All packages are up to date.\n")
        sh.hooks.changed()
        return 0
    if simulate and sh.user != "root":
        io.out.write(APT_SIMULATION_NOTE)
    io.out.write("Reading package lists...\nBuilding dependency tree...\nReading state information...\n")
    with sh.locked():
        serial = int(system.os.get("apt", {}).get("lists_serial", 0))
        if action in ("install", "reinstall"):
            unknown = [n for n in names if n.split("=")[0] not in catalog.DEBIAN and not n.endswith(".deb")]
            if unknown:
                _err(io, f"E: Unable to locate package {unknown[0]}")
                return 100
            wanted = [n.split("=")[0] for n in names]
            plan = [n for n in catalog.closure(wanted) if n not in system.packages]
            for n in wanted:
                if n in system.packages:
                    io.out.write(f"{n} is already the newest version ({system.packages[n]}).\n")
            changes = [(n, "", catalog.archive_version(n, serial) or "") for n in plan]
        elif action in ("upgrade", "dist-upgrade", "full-upgrade"):
            changes = system.upgradable(serial)
        elif action in ("remove", "purge"):
            missing = [n for n in names if n not in system.packages]
            for n in missing:
                io.out.write(f"Package '{n}' is not installed, so not removed\n")
            changes = [(n, system.packages[n], "") for n in names if n in system.packages]
        else:
            changes = []
    new = [c for c in changes if not c[1]]
    upgraded = [c for c in changes if c[1] and c[2]]
    removed = [c for c in changes if not c[2]]
    if new:
        io.out.write("The following NEW packages will be installed:\n  " + " ".join(sorted(c[0] for c in new)) + "\n")
    if upgraded:
        io.out.write("The following packages will be upgraded:\n  " + " ".join(c[0] for c in upgraded) + "\n")
    if removed:
        io.out.write("The following packages will be REMOVED:\n  " + " ".join(c[0] for c in removed) + "\n")
    io.out.write(f"{len(upgraded)} upgraded, {len(new)} newly installed, {len(removed)} to remove and 0 not upgraded.\n")
    if simulate:  # what apt would do, in its -s notation; nothing changes
        _apt_simulation(io, changes)
        return 0
    extra = len(new) > len(names) if action == "install" else bool(changes)
    if changes and extra and not yes:
        io.out.write("Do you want to continue? [Y/n] Abort.\n")
        return 1
    if not changes:
        return 0
    wait(sh.hooks.duration(3 + 1.5 * len(changes)), sh.cancel, sh.hooks.lock)
    with sh.locked():
        if action in ("remove", "purge"):
            system.remove_packages([c[0] for c in removed], purge=action == "purge")
            for name, _, _ in removed:
                io.out.write(f"Removing {name} ({changes[0][1]}) ...\n")
        else:
            for name, old, version in changes:
                if old:
                    io.out.write(f"Preparing to unpack .../{name}_{version}_amd64.deb ...\n"
                                 f"Unpacking {name} ({version}) over ({old}) ...\n")
                    system.packages[name] = version
                else:
                    system.install([name], serial)
            for name, _, version in changes:
                io.out.write(f"Setting up {name} ({version}) ...\n")
        system.os.setdefault("history", []).append({"event": f"apt-{action}", "packages": [c[0] for c in changes]})
    sh.hooks.changed()
    return 0


def _dpkg_fields(name: str, version: str) -> dict[str, str]:
    pkg = catalog.DEBIAN.get(name)
    return {"Package": name, "binary:Package": name, "Version": version, "Status": "install ok installed",
            "db:Status-Abbrev": "ii ", "db:Status-Status": "installed", "Architecture": "amd64",
            "Priority": pkg.priority if pkg else "optional", "Maintainer": "Debian <debian@lists.debian.org>",
            "Installed-Size": str(100 + len(name) * 37)}


def _dpkg_format(fmt: str, fields: dict[str, str]) -> str:
    text = fmt.encode().decode("unicode_escape")

    def sub(m: re.Match[str]) -> str:
        name, _, width = m.group(1).partition(";")
        value = fields.get(name, "")
        return value.ljust(int(width)) if width and width.isdigit() else value

    return re.sub(r"\$\{([^}]+)\}", sub, text)


@program("dpkg-query", "dpkg", package="dpkg")
def dpkg_query(sh: Shell, argv: list[str], io: IO) -> int:
    flags, values, rest = _flags(argv[1:], ("-f", "--showformat"))
    fmt = values.get("-f", values.get("--showformat", "${binary:Package}\t${Version}\n"))
    fmt = fmt[1:] if "-f" in values and fmt.startswith("=") else fmt  # dpkg's option parser takes -f=FORMAT too
    packages = sh.system.packages

    def select(patterns: list[str]) -> tuple[list[str], list[str]]:
        if not patterns:
            return sorted(packages), []
        chosen, missing = [], []
        for p in patterns:
            hits = sorted(n for n in packages if fnmatch.fnmatchcase(n, p))
            chosen += hits
            if not hits:
                missing.append(p)
        return list(dict.fromkeys(chosen)), missing

    if {"-W", "--show"} & flags:
        chosen, missing = select(rest)
        for n in chosen:
            io.out.write(_dpkg_format(fmt, _dpkg_fields(n, packages[n])))
        for p in missing:
            _err(io, f"dpkg-query: no packages found matching {p}")
        return 1 if missing else 0
    if {"-l", "--list"} & flags:
        chosen, missing = select(rest)
        io.out.write("Desired=Unknown/Install/Remove/Purge/Hold\n| Status=Not/Inst/Conf-files/Unpacked/halF-conf/"
                     "Half-inst/trig-aWait/Trig-pend\n|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)\n"
                     "||/ Name           Version      Architecture Description\n"
                     "+++-==============-============-============-=================================\n")
        for n in chosen:
            io.out.write(f"ii  {n:<14} {packages[n]:<12} amd64        {n} {SIMULATED}\n")
        for p in missing:
            _err(io, f"dpkg-query: no packages found matching {p}")
        return 1 if missing else 0
    if {"-s", "--status"} & flags:
        status = 0
        for n in rest:
            if n not in packages:
                _err(io, f"dpkg-query: package '{n}' is not installed and no information is available")
                status = 1
                continue
            f = _dpkg_fields(n, packages[n])
            io.out.write(f"Package: {n}\nStatus: {f['Status']}\nPriority: {f['Priority']}\nArchitecture: amd64\n"
                         f"Version: {f['Version']}\n\n")
        return status
    if "--get-selections" in flags:
        for n in sorted(packages):
            io.out.write(f"{n}\t\t\t\t\tinstall\n")
        return 0
    if "--version" in flags:
        io.out.write(f"Debian '{argv[0]}' package management program version {catalog.DEBIAN['dpkg'].version} "
                     f"(amd64).\n")
        return 0
    _err(io, f"{argv[0]}: need an action option\n\nType {argv[0]} --help for help.")
    return 2


# services -----------------------------------------------------------------------------------
def _unit(name: str) -> str:
    name = name.removesuffix(".service")
    return {"sshd": "ssh", "waagent": "walinuxagent", "ntp": "chrony"}.get(name, name)


@program("systemctl", package="systemd")
def systemctl(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, rest = _flags(argv[1:], ("-t", "--type", "-n", "--lines"))
    quiet = "-q" in flags or "--quiet" in flags
    if not rest:
        rest = ["list-units"]
    verb, units = rest[0], [_unit(u) for u in rest[1:]]
    services = sh.system.services
    if verb in ("poweroff", "halt", "reboot"):
        if not _need_root(sh, io, f"Call to {'Reboot' if verb == 'reboot' else 'PowerOff'} failed: "
                                  "Interactive authentication required."):
            return 1
        signal_power(sh, "reboot" if verb == "reboot" else "poweroff")
    if verb == "is-active":
        status = 0
        for u in units:
            active = services.get(u, {}).get("active", False)
            if not quiet:
                io.out.write(("active" if active else "inactive") + "\n")
            status = status or (0 if active else 3)
        return status
    if verb == "is-enabled":
        status = 0
        for u in units:
            if u not in services:
                _err(io, f"Failed to get unit file state for {u}.service: No such file or directory")
                status = 1
                continue
            enabled = services[u].get("enabled", False)
            if not quiet:
                io.out.write(("enabled" if enabled else "disabled") + "\n")
            status = status or (0 if enabled else 1)
        return status
    if verb == "status":
        status = 0
        for u in units:
            if u not in services:
                _err(io, f"Unit {u}.service could not be found.")
                status = 4
                continue
            s = services[u]
            state = "active (running)" if s.get("active") else "inactive (dead)"
            io.out.write(f"● {u}.service - {u} {SIMULATED}\n     Loaded: loaded (/lib/systemd/system/{u}.service; "
                         f"{'enabled' if s.get('enabled') else 'disabled'}; preset: enabled)\n"
                         f"     Active: {state}\n")
            status = status or (0 if s.get("active") else 3)
        return status
    if verb in ("list-units", "list-unit-files"):
        for u, s in sorted(services.items()):
            io.out.write(f"{u}.service loaded {'active running' if s.get('active') else 'inactive dead'}\n")
        return 0
    if verb == "daemon-reload":
        return 0 if _need_root(sh, io, "Failed to reload daemon: Interactive authentication required.") else 1
    actions = ("start", "stop", "restart", "reload", "try-restart", "reload-or-restart", "enable", "disable", "mask",
               "unmask")
    if verb not in actions:
        _err(io, f"Unknown command verb {verb}.")
        return 1
    if not units:
        _err(io, "Too few arguments.")
        return 1
    if sh.user != "root":
        _err(io, f"Failed to {verb} {units[0]}.service: Interactive authentication required.\n"
                 f"See system logs and 'systemctl status {units[0]}.service' for details.")
        return 1
    now = "--now" in flags
    for u in units:
        if u not in services:
            _err(io, f"Failed to {verb} {u}.service: Unit {u}.service not found." if verb not in ("enable", "disable")
                 else f"Failed to {verb} unit: Unit file {u}.service does not exist.")
            return 5 if verb not in ("enable", "disable") else 1
        s = services[u]
        if verb in ("start", "restart", "reload", "try-restart", "reload-or-restart"):
            s["active"] = s.get("active", False) or verb != "try-restart"
        elif verb == "stop":
            s["active"] = False
        elif verb == "enable":
            s["enabled"] = True
            s["active"] = s.get("active", False) or now
            io.err.write(f"Synchronizing state of {u}.service with SysV service script with "
                         f"/lib/systemd/systemd-sysv-install.\n")
        elif verb == "disable":
            s["enabled"] = False
            s["active"] = s.get("active", False) and not now
        elif verb == "mask":
            s["enabled"] = False
            s["masked"] = True
        elif verb == "unmask":
            s.pop("masked", None)
    _touch_changed(sh)
    return 0


@program("service")
def service(sh: Shell, argv: list[str], io: IO) -> int:
    if len(argv) < 3:
        _err(io, "Usage: service < option > | --status-all | [ service_name [ command | --full-restart ] ]")
        return 1
    return systemctl(sh, ["systemctl", "is-active" if argv[2] == "status" else argv[2], argv[1]], io)


@program("journalctl", package="systemd")
def journalctl(sh: Shell, argv: list[str], io: IO) -> int:
    flags, values, _ = _flags(argv[1:], ("-u", "-n"))
    if any(f.startswith("--vacuum") for f in list(flags) + list(values)) or "--rotate" in flags:
        if not _need_root(sh, io, "Failed to vacuum: Permission denied"):
            return 1
        io.err.write("Vacuuming done, freed 0B of archived journals from /var/log/journal.\n")
        return 0
    io.out.write("-- No entries --\n")
    return 0


# cloud-init, waagent, power ------------------------------------------------------------------
@program("cloud-init", package="cloud-init")
def cloud_init(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, rest = _flags(argv[1:])
    if "--version" in flags or rest[:1] == ["--version"]:
        io.out.write(f"/usr/bin/cloud-init {catalog.DEBIAN['cloud-init'].version.split('-')[0]}\n")
        return 0
    if not rest:
        _err(io, "usage: cloud-init [-h] [--version] [--debug] [--force] {init,modules,single,query,analyze,devel,"
                 "collect-logs,clean,status,schema} ...")
        return 2
    if rest[0] == "status":
        state = sh.system.cloud_init_status()
        io.out.write(f"status: {state}\n")
        if "--long" in flags:
            io.out.write("boot_status_code: enabled-by-generator\ndetail:\nDataSourceAzure [seed=/dev/sr0] "
                         f"{SIMULATED}\n")
        return 0
    if rest[0] == "clean":
        if not _need_root(sh, io, "ERROR: Could not remove /var/lib/cloud: Permission denied"):
            return 1
        sh.system.cloud_init_clean(logs="--logs" in flags or "-l" in flags, machine_id="--machine-id" in flags,
                                   seed="--seed" in flags or "-s" in flags)
        _touch_changed(sh)
        if "-r" in flags or "--reboot" in flags:
            signal_power(sh, "reboot")
        return 0
    if rest[0] == "query" and rest[1:2]:
        key = rest[1]
        values = {"v1.local_hostname": sh.system.hostname, "local_hostname": sh.system.hostname,
                  "instance_id": sh.system.cached_instance_id() or "", "v1.instance_id": sh.system.cached_instance_id()
                  or "", "v1.cloud_name": "azure", "cloud_name": "azure", "platform": "azure"}
        if key not in values:
            _err(io, f"ERROR: Undefined instance-data key {key}")
            return 1
        io.out.write(f"{values[key]}\n")
        return 0
    _err(io, f"simulated guest: 'cloud-init {rest[0]}' is not simulated")
    return 1


@program("waagent", package="waagent", locked=False)
def waagent(sh: Shell, argv: list[str], io: IO) -> int:
    args = [a.lstrip("-") for a in argv[1:]]
    if not args or "help" in args:
        io.out.write("usage: waagent [-verbose] [-force] [-help] -configuration-path:<path> "
                     "-deprovision[+user]|-register-service|-version|-daemon|-start|-run-exthandlers|-show-configuration"
                     "|-collect-logs [-full]|-setup-firewall [-dst_ip=<IP> -uid=<UID> [-w/--wait]]\n")
        return 0
    if "version" in args:
        version = sh.system.packages.get("waagent", "").split("-")[0]
        io.out.write(f"WALinuxAgent-{version} running on debian 12.5\nPython: 3.11.2\nGoal state agent: {version}\n")
        return 0
    mode = next((a for a in args if a.startswith("deprovision")), None)
    if mode is None:
        _err(io, f"simulated guest: 'waagent {' '.join(argv[1:])}' is not simulated")
        return 1
    if sh.user != "root":
        _err(io, "Deprovision failed: the agent must run as root (simulated guest)")
        return 1
    deluser = mode == "deprovision+user"
    with sh.locked():
        preview = sh.system.deprovision_warnings(deluser=deluser)
    for w in preview:
        io.out.write(w + "\n")
    if "force" not in args:
        io.out.write("Do you want to proceed (y/n)")
        answer = io.stdin.readline()
        if not answer:
            io.out.write("\n")
            _err(io, "Traceback (most recent call last):\n  ...\nEOFError: EOF when reading a line")
            return 1
        if not answer.lower().startswith("y"):
            return 0
    wait(sh.hooks.duration(4.5), sh.cancel, sh.hooks.lock)
    with sh.locked():
        sh.system.deprovision(deluser=deluser)
    sh.hooks.log(f"waagent -{mode}: deprovisioned")
    sh.hooks.changed()
    return 0


@program("shutdown", "poweroff", "halt", "reboot")
def shutdown(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, rest = _flags(argv[1:])
    reboot = argv[0] == "reboot" or "-r" in flags or "--reboot" in flags
    if "-c" in flags:
        return 0
    if sh.user != "root":
        if argv[0] == "shutdown":
            _err(io, "Failed to set wall message, ignoring: Interactive authentication required.")
        _err(io, f"Call to {'Reboot' if reboot else 'PowerOff'} failed: Interactive authentication required.")
        return 1
    when = rest[0] if rest else ("now" if argv[0] != "shutdown" else "+1")
    if when not in ("now", "+0", "0"):
        minutes = int(when.lstrip("+")) if when.lstrip("+").isdigit() else 1
        at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
        io.err.write(f"Shutdown scheduled for {at:%a %Y-%m-%d %H:%M:%S} UTC, use 'shutdown -c' to cancel.\n")
        wait(sh.hooks.duration(60 * minutes), sh.cancel, sh.hooks.lock)
    signal_power(sh, "reboot" if reboot else "poweroff")
    return 0


# network -----------------------------------------------------------------------------------
@program("curl", package="curl")
def curl(sh: Shell, argv: list[str], io: IO) -> int:
    flags, values, rest = _flags(argv[1:], ("-o", "-w", "-H", "-X", "-d", "--output", "--write-out", "--header",
                                            "--max-time", "-m", "--retry", "--connect-timeout", "-A", "-u"))
    if not rest:
        _err(io, "curl: try 'curl --help' or 'curl --manual' for more information")
        return 2
    url = rest[0]
    m = re.match(r"(?:(https?)://)?([^/:]+)(?::(\d+))?(/.*)?$", url)
    if not m:
        _err(io, "curl: (3) URL using bad/illegal format or missing URL")
        return 3
    host = m.group(2)
    silent = bool({"-s", "--silent", "-sS", "-fsSL", "-sSL", "-fsS"} & flags) or "-s" in flags
    if host not in ("localhost", "127.0.0.1", sh.system.hostname):
        if not silent or "-S" in flags or "--show-error" in flags:
            _err(io, f"curl: (6) Could not resolve host: {host} (the simulated guest has no outbound network)")
        return 6
    page = None
    for svc, path in (("nginx", "/var/www/html/index.nginx-debian.html"), ("apache2", "/var/www/html/index.html")):
        if sh.system.services.get(svc, {}).get("active"):
            for candidate in ("/var/www/html/index.html", path):
                if candidate in sh.system.files:
                    page = sh.system.read(candidate)
                    break
    if page is None:
        if not silent or "-S" in flags:
            _err(io, f"curl: (7) Failed to connect to {host} port {m.group(3) or 80} after 0 ms: Couldn't connect to "
                     "server")
        return 7
    out = values.get("-o", values.get("--output"))
    if out and out != "/dev/null":
        sh.system.write(_path(sh, out), page, user=sh.user)
    elif not out:
        io.out.write(page)
    fmt = values.get("-w", values.get("--write-out"))
    if fmt:
        io.out.write(fmt.replace("%{http_code}", "200").encode().decode("unicode_escape"))
    return 0


@program("wget", package="wget")
def wget(sh: Shell, argv: list[str], io: IO) -> int:
    rest = _flags(argv[1:], ("-O", "-o", "-P"))[2]
    host = re.sub(r"^\w+://", "", rest[0] if rest else "").split("/")[0]
    _err(io, f"--2024-01-01 00:00:00--  {rest[0] if rest else ''}\nResolving {host} ({host})... failed: Temporary "
             "failure in name resolution.\nwget: unable to resolve host address '" + host + "'")
    return 4


@program("nginx", package="nginx")
def nginx(sh: Shell, argv: list[str], io: IO) -> int:
    flags, _, _ = _flags(argv[1:])
    if "-v" in flags or "-V" in flags:
        _err(io, f"nginx version: nginx/{sh.system.packages['nginx'].split('-')[0]}")
        return 0
    if "-t" in flags:
        ok = "/etc/nginx/nginx.conf" in sh.system.files
        _err(io, "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\nnginx: configuration file "
                 "/etc/nginx/nginx.conf test is successful" if ok else
                 'nginx: [emerg] open() "/etc/nginx/nginx.conf" failed (2: No such file or directory)')
        return 0 if ok else 1
    io.err.write(f"simulated guest: '{' '.join(argv)}' ran without effect\n")
    return 0


@program("python3", "python", package="python3")
def python3(sh: Shell, argv: list[str], io: IO) -> int:
    if argv[1:2] in (["--version"], ["-V"]):
        io.out.write("Python 3.11.2\n")
        return 0
    _err(io, f"simulated guest: python is not simulated; '{' '.join(argv)}' did not run")
    return 1


def run_text(sh: Shell, text: str) -> tuple[int, str, str]:
    """Run a script in a child shell and capture it (used by tests and tools)."""
    out, err = Buffer(), Buffer()
    child = sh.child(io=IO(TextInput(""), out, err))
    return child.run_script(text), out.getvalue(), err.getvalue()
