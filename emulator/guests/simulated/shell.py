"""The simulated Linux guest's shell: executes shparse's AST against a LinuxSystem.

Semantics follow bash where scripts depend on them: ``set -e`` (not inside conditions or
non-final ``&&``/``||`` parts), ``set -u``, ``pipefail``, exit statuses (127 not found, 126, 2
syntax error), redirections applied by the calling shell (so ``sudo echo x > /etc/f`` is denied as
on a real machine), ``sudo`` only for users with a sudoers rule. Programs live in ``commands.py``.
"""

from __future__ import annotations

import ast
import fnmatch
import operator
import posixpath
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from emulator.guests.simulated import shparse as sp
from emulator.guests.simulated.linux import FsError, LinuxSystem
from emulator.guests.simulated.session import (
    Buffer,
    Cancelled,
    GuestHooks,
    Input,
    Null,
    Output,
    PowerOff,
    TextInput,
    hang,
)

NOT_FOUND = "command not found (simulated guest)"


class ExitShell(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class ReturnFromFunction(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class LoopControl(Exception):
    def __init__(self, kind: str, levels: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.levels = levels


@dataclass
class IO:
    stdin: Input
    out: Output
    err: Output


class FileOut:
    """``> file`` / ``>> file``: collected, then written to the simulated filesystem when the command ends."""

    def __init__(self, sh: Shell, path: str, append: bool) -> None:
        self.sh, self.path, self.append = sh, path, append
        self.buf = Buffer()

    def write(self, text: str) -> None:
        self.buf.write(text)

    def commit(self) -> None:
        with self.sh.locked():
            self.sh.system.write(self.path, self.buf.getvalue(), user=self.sh.user, append=True)
        self.sh.hooks.changed()


Program = Callable[["Shell", list[str], IO], int]


@dataclass
class ProgramInfo:
    fn: Program
    package: str | None = None  # must be installed for the command to exist
    locked: bool = True  # runs holding the guest's lock (programs that wait take it themselves)


PROGRAMS: dict[str, ProgramInfo] = {}


def program(*names: str, package: str | None = None, locked: bool = True) -> Callable[[Program], Program]:
    def wrap(fn: Program) -> Program:
        for n in names:
            PROGRAMS[n] = ProgramInfo(fn, package, locked)
        return fn

    return wrap


class Shell:
    """One bash process: variables, options, functions, cwd, user; runs scripts and argv."""

    def __init__(self, system: LinuxSystem, hooks: GuestHooks, *, user: str, cancel: threading.Event, io: IO,
                 name: str = "bash", env: dict[str, str] | None = None, cwd: str | None = None,
                 parent: Shell | None = None) -> None:
        self.system = system
        self.hooks = hooks
        self.user = user
        self.cancel = cancel
        self.io = io
        self.name = name
        home = system.home_of(user) or "/"
        self.cwd = cwd or (home if system.is_dir(home) else "/")
        self.vars: dict[str, str] = {}
        self.exported: set[str] = set()
        base = {"HOME": home, "USER": user, "LOGNAME": user, "SHELL": "/bin/bash", "LANG": "C.UTF-8",
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PWD": self.cwd}
        for k, v in {**base, **(env or {})}.items():
            self.vars[k] = v
            self.exported.add(k)
        self.vars.setdefault("HOSTNAME", system.hostname)
        self.functions: dict[str, sp.Command] = dict(parent.functions) if parent else {}
        self.opts: set[str] = set()
        self.positional: list[str] = []
        self.status = 0
        self.suppress_errexit = 0
        self.loop_depth = 0

    # entry points --------------------------------------------------------------------
    def run_script(self, src: str, *, args: list[str] | None = None) -> int:
        """Run a whole script; returns its exit status (``exit N``, the last status, or 2 on a syntax error)."""
        if args is not None:
            self.positional = list(args)
        try:
            tree = sp.parse(src)
        except sp.ParseError as exc:
            self.io.err.write(f"{self.name}: {exc}\n")
            return 2
        try:
            return self.exec_seq(tree)
        except ExitShell as e:
            return e.code
        except ReturnFromFunction as e:
            return e.code
        except LoopControl:
            return self.status

    def child(self, *, user: str | None = None, io: IO | None = None, name: str | None = None,
              env_reset: bool = False) -> Shell:
        env = {} if env_reset else {k: self.vars[k] for k in self.exported if k in self.vars}
        if user is not None and user != self.user:
            env = {k: v for k, v in env.items() if k not in ("HOME", "USER", "LOGNAME", "PWD")}
        sh = Shell(self.system, self.hooks, user=user or self.user, cancel=self.cancel, io=io or self.io,
                   name=name or self.name, env=env, cwd=self.cwd if user in (None, self.user) else None, parent=self)
        return sh

    def subshell(self, io: IO | None = None) -> Shell:
        sh = self.child(io=io)
        sh.vars = dict(self.vars)
        sh.exported = set(self.exported)
        sh.opts = set(self.opts)
        sh.positional = list(self.positional)
        sh.status = self.status
        sh.cwd = self.cwd
        return sh

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self.hooks.lock:
            yield

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    # execution -----------------------------------------------------------------------
    def exec_seq(self, seq: sp.Seq, io: IO | None = None) -> int:
        status = 0
        for item in seq.items:
            status = self.exec_and_or(item, io or self.io)
        return status

    def exec_and_or(self, ao: sp.AndOr, io: IO) -> int:
        chain = [("", ao.first), *ao.rest]
        status = 0
        last_index = -1
        for idx, (op, pipe) in enumerate(chain):
            if op == "&&" and status != 0:
                continue
            if op == "||" and status == 0:
                continue
            final = idx == len(chain) - 1
            if not final:
                self.suppress_errexit += 1
            try:
                status = self.exec_pipeline(pipe, io)
            finally:
                if not final:
                    self.suppress_errexit -= 1
            last_index = idx
        self.status = status
        if (status != 0 and "e" in self.opts and self.suppress_errexit == 0 and last_index == len(chain) - 1
                and not chain[last_index][1].negate):
            raise ExitShell(status)
        return status

    def exec_pipeline(self, pipe: sp.Pipeline, io: IO) -> int:
        self.check_cancel()
        if pipe.negate:
            self.suppress_errexit += 1
        try:
            if len(pipe.cmds) == 1:
                status = self.exec_command(pipe.cmds[0], io)
            else:
                data = io.stdin
                statuses = []
                for i, cmd in enumerate(pipe.cmds):
                    last = i == len(pipe.cmds) - 1
                    buf = Buffer()
                    stage = IO(data, io.out if last else buf, io.err)
                    sub = self.subshell(stage) if not last else self
                    statuses.append(sub.exec_command(cmd, stage) if sub is self else _run_sub(sub, cmd, stage))
                    data = TextInput(buf.getvalue())
                status = statuses[-1]
                if "pipefail" in self.opts:
                    status = next((s for s in reversed(statuses) if s != 0), 0)
        finally:
            if pipe.negate:
                self.suppress_errexit -= 1
        if pipe.negate:
            status = 0 if status else 1
        self.status = status
        return status

    def exec_command(self, cmd: sp.Command, io: IO) -> int:
        if isinstance(cmd, sp.Simple):
            return self.exec_simple(cmd, io)
        if isinstance(cmd, sp.FuncDef):
            self.functions[cmd.name] = cmd.body
            return 0
        with self.redirected(cmd.redirs, io) as rio:
            if rio is None:
                return 1
            if isinstance(cmd, sp.If):
                for cond, body in cmd.clauses:
                    self.suppress_errexit += 1
                    try:
                        ok = self.exec_seq(cond, rio) == 0
                    finally:
                        self.suppress_errexit -= 1
                    if ok:
                        return self.exec_seq(body, rio)
                return self.exec_seq(cmd.orelse, rio) if cmd.orelse else 0
            if isinstance(cmd, sp.For):
                items = self.expand_words(cmd.words) if cmd.words is not None else list(self.positional)
                return self._loop(lambda: iter(items), cmd, rio)
            if isinstance(cmd, sp.While):
                return self._while(cmd, rio)
            if isinstance(cmd, sp.Case):
                value = self.expand_single(cmd.word)
                for pats, body in cmd.arms:
                    if any(fnmatch.fnmatchcase(value, self.expand_single(p)) for p in pats):
                        return self.exec_seq(body, rio)
                return 0
            if isinstance(cmd, sp.Group):
                if cmd.subshell:
                    return _run_sub(self.subshell(rio), sp.Group(cmd.body), rio)
                return self.exec_seq(cmd.body, rio)
        raise AssertionError(cmd)

    def _loop(self, items: Callable[[], Iterator[str]], cmd: sp.For, io: IO) -> int:
        status = 0
        self.loop_depth += 1
        try:
            for value in items():
                self.check_cancel()
                self.vars[cmd.var] = value
                try:
                    status = self.exec_seq(cmd.body, io)
                except LoopControl as lc:
                    if lc.levels > 1:
                        lc.levels -= 1
                        raise
                    if lc.kind == "break":
                        break
        finally:
            self.loop_depth -= 1
        return status

    def _while(self, cmd: sp.While, io: IO) -> int:
        status = 0
        self.loop_depth += 1
        try:
            while True:
                self.check_cancel()
                self.suppress_errexit += 1
                try:
                    ok = self.exec_seq(cmd.cond, io) == 0
                finally:
                    self.suppress_errexit -= 1
                if ok == cmd.until:
                    break
                try:
                    status = self.exec_seq(cmd.body, io)
                except LoopControl as lc:
                    if lc.levels > 1:
                        lc.levels -= 1
                        raise
                    if lc.kind == "break":
                        break
        finally:
            self.loop_depth -= 1
        return status

    def exec_simple(self, cmd: sp.Simple, io: IO) -> int:
        self.check_cancel()
        self.vars["LINENO"] = str(cmd.line)
        argv = self.expand_words(cmd.words)
        assigns = [(name, self.expand_single(value)) for name, value in cmd.assigns]
        if not argv:
            for name, value in assigns:
                self.vars[name] = value
            with self.redirected(cmd.redirs, io) as rio:
                return 0 if rio is not None else 1
        if "x" in self.opts:
            io.err.write("+ " + " ".join(_quote(a) for a in argv) + "\n")
        saved = {name: self.vars.get(name) for name, _ in assigns}
        for name, value in assigns:
            self.vars[name] = value
            self.exported.add(name)
        try:
            with self.redirected(cmd.redirs, io) as rio:
                if rio is None:
                    return 1
                return self.run_argv(argv, rio)
        finally:
            for name, old in saved.items():
                if old is None:
                    self.vars.pop(name, None)
                else:
                    self.vars[name] = old

    def run_argv(self, argv: list[str], io: IO, *, check_fault: bool = True) -> int:
        """Run one command line (already expanded): faults, functions, builtins, programs, scripts."""
        self.check_cancel()
        name = argv[0]
        if check_fault:
            fault = self.hooks.take_fault(" ".join(argv))
            if fault is not None:
                self.hooks.log(f"fault {fault.id} fired for {' '.join(argv)!r}")
                if fault.hang:
                    hang(self.cancel, self.hooks.lock)
                if fault.stderr:
                    io.err.write(fault.stderr if fault.stderr.endswith("\n") else fault.stderr + "\n")
                self.status = fault.exit_code
                return fault.exit_code
        if name in self.functions:
            return self.call_function(name, argv[1:], io)
        builtin = BUILTINS.get(name)
        if builtin is not None:
            status = builtin(self, argv, io)
            self.status = status
            return status
        base = posixpath.basename(name) if name.startswith("/") else name
        info = PROGRAMS.get(base)
        if info is not None and name.startswith("/") and not self.system.is_file(name):
            info = None if not name.startswith(("/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/", "/usr/local/bin/")) \
                else info
        if info is not None and (info.package is None or info.package in self.system.packages):
            ctx = self.locked() if info.locked else nullcontext()
            with ctx:
                status = info.fn(self, argv, io)
            self.status = status
            return status
        if "/" in name:
            return self.run_file(name, argv[1:], io)
        package = self.system.command_package(base)
        if package and package in self.system.packages:
            if argv[1:] in (["--version"], ["-v"], ["-V"], ["version"]):
                io.out.write(f"{base} {self.system.packages[package]} (simulated)\n")
            else:
                io.err.write(f"simulated guest: '{' '.join(argv)}' ran without effect\n")
            return 0
        io.err.write(f"{self.name}: {name}: {NOT_FOUND}\n")
        self.status = 127
        return 127

    def run_file(self, path: str, args: list[str], io: IO) -> int:
        full = self.system.norm(path, self.cwd)
        with self.locked():
            if not self.system.exists(full):
                io.err.write(f"{self.name}: {path}: No such file or directory\n")
                return 127
            if self.system.is_dir(full):
                io.err.write(f"{self.name}: {path}: Is a directory\n")
                return 126
            if not self.system.mode_of(full) & 0o111:
                io.err.write(f"{self.name}: {path}: Permission denied\n")
                return 126
            try:
                src = self.system.read(full, self.user)
            except FsError as exc:
                io.err.write(f"{self.name}: {path}: {exc}\n")
                return 126
        first = src.split("\n", 1)[0]
        if first.startswith("#!") and not re.search(r"\b(ba)?sh\b", first):
            io.err.write(f"simulated guest: interpreter '{first[2:].strip()}' is not simulated\n")
            return 126
        sh = self.child(io=io, name=path)
        sh.vars["0"] = path
        return sh.run_script(src, args=args)

    def run_argv_external(self, argv: list[str], io: IO) -> int:
        """What sudo/env/nohup run: programs and files, never the caller's shell functions."""
        if argv[0] in self.functions and argv[0] not in BUILTINS:
            io.err.write(f"sudo: {argv[0]}: {NOT_FOUND}\n")
            return 1
        return self.run_argv(argv, io)

    def resolve(self, name: str) -> str | None:
        return _resolve(self, name)

    def call_function(self, name: str, args: list[str], io: IO) -> int:
        saved = self.positional
        self.positional = list(args)
        try:
            return self.exec_command(self.functions[name], io)
        except ReturnFromFunction as r:
            return r.code
        finally:
            self.positional = saved

    # redirections ---------------------------------------------------------------------
    @contextmanager
    def redirected(self, redirs: list[sp.Redir], io: IO) -> Iterator[IO | None]:
        if not redirs:
            yield io
            return
        streams: dict[int, Any] = {0: io.stdin, 1: io.out, 2: io.err}
        files: list[FileOut] = []
        for r in redirs:
            fd = r.fd
            target = ""
            try:
                if r.op in ("<<", "<<-"):
                    text = r.heredoc or ""
                    streams[0 if fd is None else fd] = TextInput(self.expand_heredoc(text) if r.expand else text)
                    continue
                assert r.target is not None
                target = self.expand_single(r.target)
                if r.op == "<<<":
                    streams[0 if fd is None else fd] = TextInput(target + "\n")
                elif r.op in (">&", "<&") and (target.isdigit() or target == "-"):
                    src_fd = int(target) if target.isdigit() else None
                    dst = (1 if r.op == ">&" else 0) if fd is None else fd
                    streams[dst] = streams.get(src_fd, Null()) if src_fd is not None else Null()
                elif r.op in (">", ">|", ">>", "&>", "&>>", ">&"):
                    out = self._open_out(target, append=r.op in (">>", "&>>"))
                    if isinstance(out, FileOut):
                        files.append(out)
                    if r.op in ("&>", "&>>", ">&"):
                        streams[1] = streams[2] = out
                    else:
                        streams[1 if fd is None else fd] = out
                elif r.op in ("<", "<>"):
                    streams[0 if fd is None else fd] = self._open_in(target)
            except FsError as exc:
                io.err.write(f"{self.name}: {target}: {exc}\n")
                yield None
                return
        rio = IO(streams[0], streams[1], streams[2])
        try:
            yield rio
        finally:
            for f in files:
                f.commit()

    def _open_out(self, target: str, append: bool) -> Output:
        if target in ("/dev/null",):
            return Null()
        if target == "/dev/stdout":
            return self.io.out
        if target == "/dev/stderr":
            return self.io.err
        path = self.system.norm(target, self.cwd)
        with self.locked():
            if self.system.is_dir(path):
                raise FsError("Is a directory")
            if not self.system.is_dir(posixpath.dirname(path)):
                raise FsError("No such file or directory")
            if not self.system.can_write(self.user, path):
                raise FsError("Permission denied")
            if not append:
                self.system.write(path, "", user=self.user)
        return FileOut(self, path, append)

    def _open_in(self, target: str) -> Input:
        if target == "/dev/null":
            return TextInput("")
        with self.locked():
            return TextInput(self.system.read(self.system.norm(target, self.cwd), self.user))

    # expansion ------------------------------------------------------------------------
    def expand_words(self, words: list[sp.Word]) -> list[str]:
        out: list[str] = []
        for w in words:
            out.extend(self.expand_word(w))
        return out

    def expand_single(self, word: sp.Word) -> str:
        return "".join(self.expand_word(word, split=False, glob=False))

    def expand_heredoc(self, text: str) -> str:
        return self.expand_single(sp.parse_word(text))

    def expand_word(self, word: sp.Word, *, split: bool = True, glob: bool = True) -> list[str]:
        fields: list[str] = []
        cur: list[str] = []
        active = False
        globbable = False
        for idx, p in enumerate(word.parts):
            if isinstance(p, sp.Lit):
                text = p.text
                if idx == 0 and not p.quoted and text.startswith("~"):
                    text = self._tilde(text)
                cur.append(text)
                active = True
                if not p.quoted and any(c in text for c in "*?["):
                    globbable = True
                continue
            if isinstance(p, sp.Param) and p.name in ("@", "*") and p.quoted and p.name == "@" and not p.op:
                args = self.positional
                if args:
                    cur.append(args[0])
                    for a in args[1:]:
                        fields.append("".join(cur))
                        cur = [a]
                    active = True
                continue
            value = self.expand_part(p)
            if p.quoted or not split:
                cur.append(value)
                active = True
                continue
            pieces = value.split()
            if not pieces:
                continue
            if value[:1].isspace() and active:
                fields.append("".join(cur))
                cur = []
            cur.append(pieces[0])
            active = True
            for piece in pieces[1:]:
                fields.append("".join(cur))
                cur = [piece]
            if value[-1:].isspace():
                fields.append("".join(cur))
                cur = []
                active = False
        if active:
            fields.append("".join(cur))
        if glob and globbable:
            out = []
            for f in fields:
                matches = self._glob(f) if any(c in f for c in "*?[") else []
                out.extend(matches or [f])
            return out
        return fields

    def _tilde(self, text: str) -> str:
        head, sep, rest = text.partition("/")
        user = head[1:] or self.user
        home = self.vars.get("HOME") if not head[1:] else self.system.home_of(user)
        if home is None:
            return text
        return home + sep + rest

    def _glob(self, pattern: str) -> list[str]:
        absolute = pattern.startswith("/")
        full = pattern if absolute else posixpath.join(self.cwd, pattern)
        with self.locked():
            matches = self.system.glob(posixpath.normpath(full))
        if absolute:
            return matches
        prefix = self.cwd.rstrip("/") + "/"
        return [m[len(prefix):] if m.startswith(prefix) else m for m in matches]

    def lookup(self, name: str) -> str | None:
        if name == "?":
            return str(self.status)
        if name == "$":
            return "4242"
        if name == "#":
            return str(len(self.positional))
        if name in ("@", "*"):
            return " ".join(self.positional)
        if name == "0":
            return self.vars.get("0", self.name)
        if name.isdigit():
            i = int(name)
            return self.positional[i - 1] if 0 < i <= len(self.positional) else None
        if name == "!":
            return ""
        if name == "-":
            return "".join(sorted(o for o in self.opts if len(o) == 1)) + "hB"
        if name == "RANDOM":
            import random

            return str(random.randint(0, 32767))
        return self.vars.get(name)

    def expand_part(self, p: sp.Part) -> str:
        if isinstance(p, sp.Lit):
            return p.text
        if isinstance(p, sp.CmdSub):
            return self.command_substitution(p.src)
        if isinstance(p, sp.Arith):
            return str(self.arith(p.src))
        return self._param(p)

    def _param(self, p: sp.Param) -> str:
        value = self.lookup(p.name)
        op = p.op
        if op == "len":
            return str(len(value or ""))
        if op in ("-", ":-", "=", ":=", "+", ":+", "?", ":?"):
            unset = value is None or (op.startswith(":") and value == "")
            if op.endswith("-"):
                return self._arg(p.arg) if unset else value or ""
            if op.endswith("="):
                if unset:
                    self.vars[p.name] = self._arg(p.arg)
                return self.vars.get(p.name, "")
            if op.endswith("+"):
                return "" if unset else self._arg(p.arg)
            if unset:
                self.io.err.write(f"{self.name}: {p.name}: {self._arg(p.arg) or 'parameter null or not set'}\n")
                raise ExitShell(1)
            return value or ""
        if value is None:
            if "u" in self.opts and p.name not in ("@", "*") and not p.name.isdigit():
                self.io.err.write(f"{self.name}: {p.name}: unbound variable\n")
                raise ExitShell(1)
            value = ""
        if op in ("#", "##", "%", "%%"):
            pattern = self._arg(p.arg)
            sizes = range(len(value) + 1)
            if op.startswith("#"):
                order = sizes if op == "#" else reversed(sizes)
                for n in order:
                    if fnmatch.fnmatchcase(value[:n], pattern):
                        return value[n:]
            else:
                order = reversed(sizes) if op == "%" else sizes
                for n in order:
                    if fnmatch.fnmatchcase(value[n:], pattern):
                        return value[:n]
            return value
        if op in ("/", "//"):
            pat, _, rep = p.arg.partition("/")
            regex = fnmatch.translate(self._arg(pat)).removesuffix("\\Z")
            return re.sub(regex, lambda _m: self._arg(rep), value, count=0 if op == "//" else 1)
        return value

    def _arg(self, text: str) -> str:
        return self.expand_single(sp.parse_word(text)) if text else ""

    def command_substitution(self, src: str) -> str:
        buf = Buffer()
        sub = self.subshell(IO(self.io.stdin, buf, self.io.err))
        self.status = sub.run_script(src)
        return buf.getvalue().rstrip("\n")

    def arith(self, src: str) -> int:
        text = self.expand_single(sp.parse_word(src)).replace("&&", " and ").replace("||", " or ")
        text = re.sub(r"!(?!=)", " not ", text)
        try:
            tree = ast.parse(text.strip() or "0", mode="eval")
            return int(_eval_arith(tree.body, self))
        except (SyntaxError, ValueError, ZeroDivisionError, TypeError) as exc:
            self.io.err.write(f"{self.name}: {src}: arithmetic error ({exc})\n")
            raise ExitShell(1) from exc


def _run_sub(sub: Shell, cmd: sp.Command, io: IO) -> int:
    try:
        return sub.exec_command(cmd, io)
    except ExitShell as e:
        return e.code


_ARITH_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Mod: operator.mod,
    ast.Pow: operator.pow, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
    ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
}
_CMP_OPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}


def _eval_arith(node: ast.expr, sh: Shell) -> int:
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name):
        raw = sh.lookup(node.id) or "0"
        return int(raw) if re.fullmatch(r"-?\d+", raw.strip()) else 0
    if isinstance(node, ast.UnaryOp):
        v = _eval_arith(node.operand, sh)
        if isinstance(node.op, ast.USub):
            return -v
        if isinstance(node.op, ast.Not):
            return int(not v)
        if isinstance(node.op, ast.Invert):
            return ~v
        return v
    if isinstance(node, ast.BinOp):
        a, b = _eval_arith(node.left, sh), _eval_arith(node.right, sh)
        if isinstance(node.op, (ast.Div, ast.FloorDiv)):
            if b == 0:
                raise ZeroDivisionError("division by 0")
            return int(a / b)
        return int(_ARITH_OPS[type(node.op)](a, b))
    if isinstance(node, ast.BoolOp):
        vals = [_eval_arith(v, sh) for v in node.values]
        return int(all(vals) if isinstance(node.op, ast.And) else any(vals))
    if isinstance(node, ast.Compare):
        left = _eval_arith(node.left, sh)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval_arith(comp, sh)
            if not _CMP_OPS[type(op)](left, right):
                return 0
            left = right
        return 1
    if isinstance(node, ast.IfExp):
        return _eval_arith(node.body if _eval_arith(node.test, sh) else node.orelse, sh)
    raise ValueError("unsupported expression")


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


# shell builtins: commands that need the shell's own state --------------------------------------
Builtin = Callable[[Shell, list[str], IO], int]
BUILTINS: dict[str, Builtin] = {}


def builtin(*names: str) -> Callable[[Builtin], Builtin]:
    def wrap(fn: Builtin) -> Builtin:
        for n in names:
            BUILTINS[n] = fn
        return fn

    return wrap


@builtin("true", ":")
def _true(sh: Shell, argv: list[str], io: IO) -> int:
    return 0


@builtin("false")
def _false(sh: Shell, argv: list[str], io: IO) -> int:
    return 1


@builtin("exit")
def _exit(sh: Shell, argv: list[str], io: IO) -> int:
    code = sh.status
    if len(argv) > 1:
        try:
            code = int(argv[1]) & 0xFF
        except ValueError:
            io.err.write(f"{sh.name}: exit: {argv[1]}: numeric argument required\n")
            code = 2
    raise ExitShell(code)


@builtin("return")
def _return(sh: Shell, argv: list[str], io: IO) -> int:
    raise ReturnFromFunction(int(argv[1]) & 0xFF if len(argv) > 1 else sh.status)


@builtin("break", "continue")
def _loopctl(sh: Shell, argv: list[str], io: IO) -> int:
    if sh.loop_depth == 0:
        return 0
    raise LoopControl(argv[0], int(argv[1]) if len(argv) > 1 else 1)


@builtin("set")
def _set(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    if not args:
        for k in sorted(sh.vars):
            io.out.write(f"{k}={_quote(sh.vars[k])}\n")
        return 0
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            sh.positional = args[i + 1:]
            return 0
        if a in ("-o", "+o"):
            if i + 1 < len(args):
                name = {"errexit": "e", "nounset": "u", "xtrace": "x"}.get(args[i + 1], args[i + 1])
                (sh.opts.add if a == "-o" else sh.opts.discard)(name)
            i += 2
            continue
        if a[:1] in "-+" and len(a) > 1:
            i += 1
            for flag in a[1:]:
                if flag == "o" and i < len(args):  # set -euo pipefail: -o takes the next word
                    name = {"errexit": "e", "nounset": "u", "xtrace": "x"}.get(args[i], args[i])
                    (sh.opts.add if a[0] == "-" else sh.opts.discard)(name)
                    i += 1
                else:
                    (sh.opts.add if a[0] == "-" else sh.opts.discard)(flag)
            continue
        sh.positional = args[i:]
        return 0
    return 0


@builtin("shift")
def _shift(sh: Shell, argv: list[str], io: IO) -> int:
    n = int(argv[1]) if len(argv) > 1 else 1
    if n > len(sh.positional):
        return 1
    sh.positional = sh.positional[n:]
    return 0


@builtin("export", "declare", "typeset", "local", "readonly")
def _export(sh: Shell, argv: list[str], io: IO) -> int:
    for a in argv[1:]:
        if a.startswith("-"):
            continue
        name, eq, value = a.partition("=")
        if eq:
            sh.vars[name] = value
        if argv[0] == "export":
            sh.exported.add(name)
    return 0


@builtin("unset")
def _unset(sh: Shell, argv: list[str], io: IO) -> int:
    for a in argv[1:]:
        if not a.startswith("-"):
            sh.vars.pop(a, None)
            sh.functions.pop(a, None)
    return 0


@builtin("cd")
def _cd(sh: Shell, argv: list[str], io: IO) -> int:
    target = argv[1] if len(argv) > 1 else sh.vars.get("HOME", "/")
    path = sh.system.norm(target, sh.cwd)
    with sh.locked():
        if not sh.system.is_dir(path):
            io.err.write(f"{sh.name}: cd: {target}: No such file or directory\n")
            return 1
    sh.cwd = path
    sh.vars["PWD"] = path
    return 0


@builtin("pwd")
def _pwd(sh: Shell, argv: list[str], io: IO) -> int:
    io.out.write(sh.cwd + "\n")
    return 0


@builtin("echo")
def _echo(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        escapes = "e" in args[0] or (escapes and "E" not in args[0])
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text = text.encode().decode("unicode_escape", errors="replace")
    io.out.write(text + ("\n" if newline else ""))
    return 0


@builtin("printf")
def _printf(sh: Shell, argv: list[str], io: IO) -> int:
    if len(argv) < 2:
        io.err.write("printf: usage: printf [-v var] format [arguments]\n")
        return 2
    fmt, args = argv[1], argv[2:]
    out = []
    while True:
        text, args = _format_once(fmt, args)
        out.append(text)
        if not args or "%" not in fmt:
            break
    io.out.write("".join(out))
    return 0


def _format_once(fmt: str, args: list[str]) -> tuple[str, list[str]]:
    out = []
    i = 0
    args = list(args)
    escapes = {"n": "\n", "t": "\t", "\\": "\\", "r": "\r", '"': '"', "a": "\a", "0": "\0"}
    while i < len(fmt):
        c = fmt[i]
        if c == "\\" and i + 1 < len(fmt):
            out.append(escapes.get(fmt[i + 1], "\\" + fmt[i + 1]))
            i += 2
        elif c == "%" and i + 1 < len(fmt):
            m = re.match(r"%([-+ 0#]*\d*(?:\.\d+)?)([sdiqxXfbc%])", fmt[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            spec, conv = m.groups()
            i += m.end()
            if conv == "%":
                out.append("%")
                continue
            arg = args.pop(0) if args else ""
            if conv in "di":
                out.append(("%" + spec + "d") % int(arg or 0))
            elif conv in "xX":
                out.append(("%" + spec + conv) % int(arg or 0))
            elif conv == "f":
                out.append(("%" + spec + "f") % float(arg or 0))
            elif conv == "b":
                out.append(arg.encode().decode("unicode_escape", errors="replace"))
            elif conv == "q":
                out.append(_quote(arg))
            else:
                out.append(("%" + spec + "s") % arg)
        else:
            out.append(c)
            i += 1
    return "".join(out), args


@builtin("read")
def _read(sh: Shell, argv: list[str], io: IO) -> int:
    names = [a for a in argv[1:] if not a.startswith("-")] or ["REPLY"]
    line = io.stdin.readline()
    if not line:
        return 1
    fields = line.rstrip("\n").split(None, len(names) - 1)
    for i, n in enumerate(names):
        sh.vars[n] = fields[i] if i < len(fields) else ""
    return 0


@builtin("source", ".")
def _source(sh: Shell, argv: list[str], io: IO) -> int:
    if len(argv) < 2:
        io.err.write(f"{sh.name}: {argv[0]}: filename argument required\n")
        return 2
    path = sh.system.norm(argv[1], sh.cwd)
    try:
        with sh.locked():
            src = sh.system.read(path, sh.user)
    except FsError as exc:
        io.err.write(f"{sh.name}: {argv[1]}: {exc}\n")
        return 1
    tree = sp.parse(src)
    return sh.exec_seq(tree, io)


@builtin("eval")
def _eval(sh: Shell, argv: list[str], io: IO) -> int:
    try:
        tree = sp.parse(" ".join(argv[1:]))
    except sp.ParseError as exc:
        io.err.write(f"{sh.name}: eval: {exc}\n")
        return 2
    return sh.exec_seq(tree, io)


@builtin("exec")
def _exec(sh: Shell, argv: list[str], io: IO) -> int:
    if len(argv) == 1:
        return 0
    raise ExitShell(sh.run_argv(argv[1:], io))


@builtin("trap", "wait", "umask", "alias", "unalias", "hash", "shopt", "ulimit", "disown", "history")
def _noop(sh: Shell, argv: list[str], io: IO) -> int:
    return 0


@builtin("command", "type", "which")
def _command(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    verbose = argv[0] in ("type", "which")
    if argv[0] == "command":
        if args and args[0] in ("-v", "-V"):
            verbose, args = True, args[1:]
        elif args:
            return sh.run_argv([a for a in args if a != "-p"], io)
    status = 0
    for name in args:
        where = sh.resolve(name)
        if where is None:
            status = 1
            if argv[0] == "type":
                io.err.write(f"{sh.name}: type: {name}: not found\n")
            continue
        if verbose:
            io.out.write((f"{name} is {where}" if argv[0] == "type" else where) + "\n")
    return status


def _resolve(sh: Shell, name: str) -> str | None:
    if name in sh.functions:
        return name
    if name in BUILTINS:
        return name
    info = PROGRAMS.get(name)
    if info is not None and (info.package is None or info.package in sh.system.packages):
        return f"/usr/bin/{name}"
    package = sh.system.command_package(name)
    if package and package in sh.system.packages:
        return f"/usr/bin/{name}"
    return None


@builtin("bash", "sh", "dash")
def _bash(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    opts: set[str] = set()
    command: str | None = None
    read_stdin = False
    while args:
        a = args[0]
        if a == "-c" and len(args) > 1:
            command, args = args[1], args[2:]
            break
        if a == "-s":
            read_stdin, args = True, args[1:]
            break
        if a in ("-o", "+o") and len(args) > 1:
            if a == "-o":
                opts.add(args[1])
            args = args[2:]
            continue
        if a in ("-l", "--login", "--norc", "--noprofile", "-i"):
            args = args[1:]
            continue
        if a.startswith("-") and len(a) > 1 and a != "--":
            if "c" in a and len(args) > 1:
                opts.update(f for f in a[1:] if f != "c")
                command, args = args[1], args[2:]
                break
            opts.update(a[1:])
            if "o" in a[1:] and len(args) > 1:  # bash -euo pipefail script.sh
                opts.add(args[1])
                args = args[2:]
            else:
                args = args[1:]
            continue
        if a == "--":
            args = args[1:]
        break
    child = sh.child(io=io, name=argv[0] if argv[0] != "dash" else "sh")
    child.opts = {o for o in opts if o in ("e", "u", "x", "pipefail")}
    if command is not None:
        child.vars["0"] = args[0] if args else argv[0]
        return child.run_script(command, args=args[1:])
    if args and not read_stdin:
        path = sh.system.norm(args[0], sh.cwd)
        try:
            with sh.locked():
                src = sh.system.read(path, sh.user)
        except FsError as exc:
            io.err.write(f"{argv[0]}: {args[0]}: {exc}\n")
            return 127
        child.vars["0"] = args[0]
        return child.run_script(src, args=args[1:])
    return child.run_script(io.stdin.read(), args=args)


@builtin("sudo")
def _sudo(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    target = "root"
    login = False
    while args and args[0].startswith("-"):
        a = args.pop(0)
        if a in ("-u", "--user") and args:
            target = args.pop(0)
        elif a.startswith("-u") and len(a) > 2:
            target = a[2:]
        elif a in ("-i", "--login", "-s"):
            login = True
        elif a == "--":
            break
    with sh.locked():
        if sh.user not in sh.system.users and sh.user != "root":
            io.err.write("sudo: you do not exist in the passwd database\n")
            return 1
        rule = sh.system.sudo_rule(sh.user)
        known_target = target in sh.system.users
    if rule is None:
        io.err.write(f"{sh.user} is not in the sudoers file.\n")
        return 1
    if rule == "password":
        io.err.write("sudo: a terminal is required to read the password; either use the -S option to read a password "
                     "from standard input or configure an askpass helper\nsudo: a password is required\n")
        return 1
    if not known_target:
        io.err.write(f"sudo: unknown user {target}\nsudo: error initializing audit plugin sudoers_audit\n")
        return 1
    child = sh.child(user=target, io=io, name="sudo")
    if not args:
        if login:
            return child.run_script(io.stdin.read())
        io.err.write("usage: sudo -h | -K | -k | -V\n")
        return 1
    env_assigns = []
    while args and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", args[0]):
        env_assigns.append(args.pop(0))
    for a in env_assigns:
        k, _, v = a.partition("=")
        child.vars[k] = v
        child.exported.add(k)
    if not args:
        return 0
    return child.run_argv_external(args, io)


@builtin("env")
def _env(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    child = sh.child(io=io)
    while args and (args[0].startswith("-") or "=" in args[0]):
        a = args.pop(0)
        if "=" in a and not a.startswith("-"):
            k, _, v = a.partition("=")
            child.vars[k] = v
            child.exported.add(k)
        elif a in ("-i", "-"):
            child.vars = {}
            child.exported = set()
    if not args:
        for k in sorted(child.exported):
            if k in child.vars:
                io.out.write(f"{k}={child.vars[k]}\n")
        return 0
    return child.run_argv_external(args, io)


@builtin("nohup", "timeout", "nice", "ionice", "stdbuf", "time")
def _wrapper(sh: Shell, argv: list[str], io: IO) -> int:
    args = argv[1:]
    while args and args[0].startswith("-"):
        args.pop(0)
    if argv[0] == "timeout" and args:
        args.pop(0)  # the duration
    if not args:
        return 0
    return sh.run_argv_external(args, io)


@builtin("su")
def _su(sh: Shell, argv: list[str], io: IO) -> int:
    args = [a for a in argv[1:] if a not in ("-", "-l", "--login")]
    command = None
    if "-c" in args:
        i = args.index("-c")
        command = args[i + 1] if i + 1 < len(args) else ""
        args = args[:i] + args[i + 2:]
    target = args[0] if args else "root"
    if sh.user != "root":
        io.err.write("su: Authentication failure\n")
        return 1
    if target not in sh.system.users:
        io.err.write(f"su: user {target} does not exist or the user entry does not contain all the required fields\n")
        return 1
    child = sh.child(user=target, io=io, name="bash")
    return child.run_script(command if command is not None else io.stdin.read())


def signal_power(sh: Shell, action: str) -> None:
    """Ask the machine to power off/reboot, then die with it (the connection drops)."""
    sh.hooks.power(action)
    raise PowerOff(action)


def run_shell(system: LinuxSystem, hooks: GuestHooks, src: str, *, user: str, io: IO,
              cancel: threading.Event | None = None, login: bool = True) -> int:
    """Run ``src`` as ``bash -c`` would for an SSH exec request; PowerOff and Cancelled propagate."""
    from emulator.guests.simulated import commands  # noqa: F401 - registers the programs

    sh = Shell(system, hooks, user=user, cancel=cancel or threading.Event(), io=io)
    return sh.run_script(src)
