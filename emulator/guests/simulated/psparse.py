"""A parser for the subset of PowerShell that image-build scripts use (simulated Windows guest).

Statements: pipelines of cmdlets/native commands (``-Param value``, ``-Switch``, ``-Param:value``,
positional arguments, ``&`` call operator), expressions (strings with ``$var``/``$env:X``/``$(...)``
expansion, numbers, ``$true``/``$false``/``$null``, arrays ``a,b``, ``@()``, ``@{}``, member access
``(...).Prop``, ``.Method()``, ``[type]::Member``, ``-eq -ne -gt -lt -ge -le -like -match
-contains -in -and -or -not``, ``+ - * / %``), assignments, ``if/elseif/else``, ``while``,
``do/while``, ``foreach``, ``try/catch/finally``, ``throw``, ``exit``, ``break``, ``continue``,
``return``, ``function``, script blocks and ``2>&1``/``> $null`` redirections.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class PSParseError(Exception):
    pass


@dataclass
class Tok:
    kind: str
    value: str = ""
    space: bool = True  # whitespace (or start of input) before this token
    line: int = 1
    pos: int = 0  # offset in the source


_WORD_STOP = set(" \t\r\n;|(){},]")
_OPERANDS = ("NUM", "VAR", "RPAREN", "RBRACKET", "STR", "XSTR", "MEMBER")


def tokenize(src: str) -> list[Tok]:
    toks: list[Tok] = []
    i, n, line = 0, len(src), 1
    space = True

    def emit(kind: str, value: str = "") -> None:
        nonlocal space
        toks.append(Tok(kind, value, space, line, start))
        space = False

    start = 0
    while i < n:
        start = i
        c = src[i]
        if c in " \t\r\ufeff":
            i += 1
            space = True
            continue
        if c == "`" and src[i + 1:i + 2] in ("\n", "\r"):
            i += 2 if src[i + 1] == "\n" else 3
            line += 1
            space = True
            continue
        if src.startswith("<#", i):
            end = src.find("#>", i + 2)
            end = n if end < 0 else end + 2
            line += src.count("\n", i, end)
            i = end
            space = True
            continue
        if c == "#":
            while i < n and src[i] != "\n":
                i += 1
            continue
        if c == "\n":
            emit("NL")
            i += 1
            line += 1
            space = True
            continue
        single = {";": "SEMI", "|": "PIPE", "(": "LPAREN", ")": "RPAREN", "{": "LBRACE", "}": "RBRACE",
                  ",": "COMMA", "]": "RBRACKET"}
        if (c == "|" and src.startswith("||", i)) or (c == "&" and src.startswith("&&", i)):
            emit("OP", src[i:i + 2])
            i += 2
            continue
        if c in single:
            emit(single[c], c)
            i += 1
            continue
        if c == "[":
            prev = toks[-1] if toks else None
            if prev is not None and not space and prev.kind in ("VAR", "RPAREN", "RBRACKET", "MEMBER", "STR", "XSTR"):
                emit("LBRACKET", "[")
                i += 1
                continue
            depth, j = 1, i + 1
            while j < n and depth:
                depth += {"[": 1, "]": -1}.get(src[j], 0)
                j += 1
            emit("TYPE", src[i + 1:j - 1].strip())
            i = j
            continue
        if src.startswith("$(", i):
            emit("SUBEXPR", "$(")
            i += 2
            continue
        if src.startswith("@(", i):
            emit("ARRAY", "@(")
            i += 2
            continue
        if src.startswith("@{", i):
            emit("HASH", "@{")
            i += 2
            continue
        if src.startswith('@"', i) or src.startswith("@'", i):
            quote = src[i + 1]
            end = src.find("\n" + quote + "@", i + 2)
            if end < 0:
                raise PSParseError("The string is missing the terminator: " + quote + "@.")
            body = src[i + 2:end]
            body = body[1:] if body.startswith("\n") else body[2:] if body.startswith("\r\n") else body
            line += src.count("\n", i, end + 3)
            emit("XSTR" if quote == '"' else "STR", body.rstrip("\r"))
            i = end + 3
            continue
        if c == "$":
            if src.startswith("${", i):
                end = src.index("}", i)
                emit("VAR", src[i + 2:end])
                i = end + 1
                continue
            m = re.match(r"\$([A-Za-z_][\w]*:[\w]+|[\w]+|[?$^_])", src[i:])
            if m:
                emit("VAR", m.group(1))
                i += m.end()
                continue
            emit("WORD", "$")
            i += 1
            continue
        if c == "'":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise PSParseError("The string is missing the terminator: '.")
                if src[j] == "'" and src.startswith("''", j):
                    buf.append("'")
                    j += 2
                    continue
                if src[j] == "'":
                    break
                buf.append(src[j])
                j += 1
            line += "".join(buf).count("\n")
            emit("STR", "".join(buf))
            i = j + 1
            continue
        if c == '"':
            j = i + 1
            while True:
                if j >= n:
                    raise PSParseError('The string is missing the terminator: ".')
                if src[j] == "`":
                    j += 2
                    continue
                if src[j] == '"' and src.startswith('""', j):
                    j += 2
                    continue
                if src[j] == '"':
                    break
                j += 1
            line += src.count("\n", i, j)
            emit("XSTR", src[i + 1:j])
            i = j + 1
            continue
        if src.startswith("::", i):
            m = re.match(r"::(\w+)", src[i:])
            if m:
                emit("STATIC", m.group(1))
                i += m.end()
                continue
        if c == "." and toks and not space and toks[-1].kind in ("VAR", "RPAREN", "RBRACKET", "MEMBER", "STR",
                                                                  "XSTR", "STATIC", "TYPE"):
            m = re.match(r"\.(\w+)", src[i:])
            if m:
                emit("MEMBER", m.group(1))
                i += m.end()
                continue
        m = re.match(r"(2>&1|\*>&1|\d?>>|\*>|\d?>)", src[i:])
        if m and (space or not toks or toks[-1].kind != "WORD"):
            emit("REDIR", m.group(1))
            i += m.end()
            continue
        if c in "+-*/%" and src[i + 1:i + 2] == "=":
            emit("ASSIGN", c + "=")
            i += 2
            continue
        if c == "=" and src[i + 1:i + 2] != "=":
            emit("ASSIGN", "=")
            i += 1
            continue
        if c == "&":
            emit("AMP", "&")
            i += 1
            continue
        if c == "!" and src[i + 1:i + 2] != "=":
            emit("OP", "!")
            i += 1
            continue
        prev_operand = bool(toks) and toks[-1].kind in _OPERANDS
        if (c in "+*/%" and (prev_operand or src[i + 1:i + 2] in (" ", "\t"))) or \
                (c == "-" and prev_operand and (i + 1 >= n or src[i + 1] in " \t\r\n($0123456789")):
            emit("OP", c)
            i += 1
            continue
        if c == "." and space and i + 1 < n and src[i + 1] in " \t'\"$":
            emit("DOT", ".")
            i += 1
            continue
        m = re.match(r"\d+(?:\.\d+)?(?:[kKmMgG][bB])?(?![\w\\:/.\-])", src[i:])
        if m:
            emit("NUM", m.group(0))
            i += m.end()
            continue
        j = i
        while j < n and src[j] not in _WORD_STOP:
            if src[j] in "'\"" and j > i and src[j - 1] == ":":
                break
            if src[j] == "`" and j + 1 < n:
                j += 2
                continue
            j += 1
        word = src[i:j].replace("`", "")
        emit("NUM" if re.fullmatch(r"-?\d+(\.\d+)?([kKmMgG][bB])?", word) else "WORD", word)
        i = j
    toks.append(Tok("EOF", "", True, line, n))
    return toks


# AST -------------------------------------------------------------------------------------------
@dataclass
class Const:
    value: Any


@dataclass
class Expand:
    raw: str  # a double-quoted string: expanded at evaluation


@dataclass
class Var:
    name: str


@dataclass
class Member:
    target: Any
    name: str
    args: list[Any] | None = None  # a method call when not None
    static: bool = False


@dataclass
class Index:
    target: Any
    index: Any


@dataclass
class TypeLit:
    name: str


@dataclass
class Cast:
    type: str
    value: Any


@dataclass
class ArrayLit:
    items: list[Any]


@dataclass
class HashLit:
    items: list[tuple[Any, Any]]


@dataclass
class SubExpr:
    body: list[Any]
    array: bool = False


@dataclass
class ScriptBlock:
    body: list[Any]
    text: str = ""


@dataclass
class Unary:
    op: str
    operand: Any


@dataclass
class Binary:
    op: str
    left: Any
    right: Any


@dataclass
class Command:
    name: Any  # str for a bareword command, or an expression after ``&``
    args: list[tuple[str, Any]] = field(default_factory=list)  # ("param", name) | ("value", expr)
    call: bool = False
    text: str = ""


@dataclass
class Pipeline:
    elements: list[Any]
    redirs: list[tuple[str, Any]] = field(default_factory=list)
    text: str = ""
    line: int = 1


@dataclass
class Assign:
    target: Any
    op: str
    value: Any


@dataclass
class IfStmt:
    clauses: list[tuple[Any, list[Any]]]
    orelse: list[Any] | None = None


@dataclass
class WhileStmt:
    cond: Any
    body: list[Any]
    do: bool = False
    until: bool = False


@dataclass
class ForEachStmt:
    var: str
    items: Any
    body: list[Any]


@dataclass
class TryStmt:
    body: list[Any]
    catches: list[list[Any]]
    final: list[Any] | None = None


@dataclass
class Flow:
    kind: str  # exit, return, throw, break, continue
    value: Any = None


@dataclass
class FunctionDef:
    name: str
    params: list[str]
    body: list[Any]


KEYWORDS = {"if", "elseif", "else", "while", "do", "foreach", "for", "try", "catch", "finally", "function",
            "exit", "return", "throw", "break", "continue", "param", "until"}
COMPARISON = {"eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "notmatch", "contains",
              "notcontains", "in", "notin", "is", "isnot", "replace", "split", "join", "f"}
LOGICAL = {"and", "or", "xor"}


class Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = tokenize(src)
        self.pos = 0

    def peek(self, k: int = 0) -> Tok:
        return self.toks[min(self.pos + k, len(self.toks) - 1)]

    def next(self) -> Tok:
        t = self.toks[self.pos]
        self.pos += 1
        return t

    def at(self, kind: str, value: str | None = None) -> bool:
        t = self.peek()
        return t.kind == kind and (value is None or t.value.lower() == value)

    def keyword(self, *words: str) -> bool:
        t = self.peek()
        return t.kind == "WORD" and t.value.lower() in words

    def expect(self, kind: str) -> Tok:
        t = self.next()
        if t.kind != kind:
            raise PSParseError(f"Unexpected token '{t.value or t.kind}' in expression or statement.")
        return t

    def skip_nl(self) -> None:
        while self.at("NL") or self.at("SEMI"):
            self.next()

    def script(self) -> list[Any]:
        body = self.statements(("EOF",))
        if not self.at("EOF"):
            raise PSParseError(f"Unexpected token '{self.peek().value}' in expression or statement.")
        return body

    def statements(self, ends: tuple[str, ...]) -> list[Any]:
        out: list[Any] = []
        while True:
            self.skip_nl()
            if self.peek().kind in ends or self.at("EOF"):
                return out
            out.append(self.statement())

    def block(self) -> list[Any]:
        self.skip_newlines_only()
        self.expect("LBRACE")
        body = self.statements(("RBRACE",))
        self.expect("RBRACE")
        return body

    def skip_newlines_only(self) -> None:
        while self.at("NL"):
            self.next()

    def paren_cond(self) -> Any:
        self.skip_newlines_only()
        self.expect("LPAREN")
        self.skip_newlines_only()
        cond = self.pipeline()
        self.skip_newlines_only()
        self.expect("RPAREN")
        return cond

    def statement(self) -> Any:
        t = self.peek()
        if t.kind == "WORD":
            kw = t.value.lower()
            if kw == "if":
                self.next()
                clauses = [(self.paren_cond(), self.block())]
                orelse = None
                while True:
                    save = self.pos
                    self.skip_newlines_only()
                    if self.keyword("elseif"):
                        self.next()
                        clauses.append((self.paren_cond(), self.block()))
                    elif self.keyword("else"):
                        self.next()
                        orelse = self.block()
                        break
                    else:
                        self.pos = save
                        break
                return IfStmt(clauses, orelse)
            if kw == "while":
                self.next()
                return WhileStmt(self.paren_cond(), self.block())
            if kw == "do":
                self.next()
                body = self.block()
                self.skip_newlines_only()
                if not self.keyword("while", "until"):
                    raise PSParseError("Missing while or until keyword in do loop.")
                until = self.next().value.lower() == "until"
                return WhileStmt(self.paren_cond(), body, do=True, until=until)
            if kw == "foreach" and self.peek(1).kind in ("LPAREN",):
                self.next()
                self.expect("LPAREN")
                var = self.expect("VAR").value
                if not self.keyword("in"):
                    raise PSParseError("Missing 'in' after variable in foreach loop.")
                self.next()
                items = self.pipeline()
                self.expect("RPAREN")
                return ForEachStmt(var, items, self.block())
            if kw == "try":
                self.next()
                body = self.block()
                catches, final = [], None
                while True:
                    save = self.pos
                    self.skip_newlines_only()
                    if self.keyword("catch"):
                        self.next()
                        while self.at("TYPE") or self.at("COMMA"):
                            self.next()
                        catches.append(self.block())
                    elif self.keyword("finally"):
                        self.next()
                        final = self.block()
                        break
                    else:
                        self.pos = save
                        break
                return TryStmt(body, catches, final)
            if kw == "function":
                self.next()
                name = self.next().value
                params: list[str] = []
                if self.at("LPAREN"):
                    self.next()
                    while not self.at("RPAREN"):
                        tok = self.next()
                        if tok.kind == "VAR":
                            params.append(tok.value)
                    self.next()
                body = self.block()
                if body and isinstance(body[0], Pipeline) and isinstance(body[0].elements[0], Command) \
                        and body[0].elements[0].name == "param":
                    params = [v.name for k, v in body[0].elements[0].args if isinstance(v, Var)]
                    body = body[1:]
                return FunctionDef(name, params, body)
            if kw == "param" and self.peek(1).kind == "LPAREN":
                self.next()
                self.next()
                names = []
                depth = 1
                while depth:
                    tok = self.next()
                    if tok.kind == "EOF":
                        raise PSParseError("Missing ')' in function parameter list.")
                    depth += {"LPAREN": 1, "RPAREN": -1}.get(tok.kind, 0)
                    if tok.kind == "VAR" and depth == 1:
                        names.append(Var(tok.value))
                return Pipeline([Command("param", [("value", v) for v in names])])
            if kw in ("exit", "return", "throw"):
                self.next()
                result: Any = None
                if not (self.at("NL") or self.at("SEMI") or self.at("EOF") or self.at("RBRACE")):
                    result = self.pipeline()
                return Flow(kw, result)
            if kw in ("break", "continue"):
                self.next()
                return Flow(kw)
        if t.kind == "VAR" and self._assignment_ahead():
            target = self.postfix(Var(self.next().value))
            op = self.next().value
            self.skip_newlines_only()
            if self.keyword("if", "foreach", "while", "try"):
                value: Any = SubExpr([self.statement()])
            else:
                value = self.pipeline()
            return Assign(target, op, value)
        return self.pipeline()

    def _assignment_ahead(self) -> bool:
        k = 1
        while True:
            t = self.peek(k)
            if t.kind == "MEMBER":
                k += 1
            elif t.kind == "LBRACKET":
                while self.peek(k).kind not in ("RBRACKET", "EOF"):
                    k += 1
                k += 1
            else:
                return t.kind == "ASSIGN"

    def pipeline(self) -> Pipeline:
        start = self.pos
        line = self.peek().line
        elements = [self.element()]
        redirs: list[tuple[str, Any]] = []
        while True:
            if self.at("REDIR"):
                op = self.next().value
                target = None if op.endswith("&1") else self.arg_value()
                redirs.append((op, target))
                continue
            if self.at("PIPE"):
                self.next()
                self.skip_newlines_only()
                elements.append(self.element())
                continue
            break
        text = self.src[self.toks[start].pos:self.peek().pos].strip()
        pipe = Pipeline(elements, redirs, text, line)
        if self.at("OP", "&&") or self.at("OP", "||"):
            op = self.next().value
            right = self.pipeline()
            return Pipeline([Binary("chain" + op, pipe, right)], [], text, line)
        return pipe

    def element(self) -> Any:
        t = self.peek()
        if t.kind == "AMP" or t.kind == "DOT":
            self.next()
            name = self.arg_atom()
            return self.command_args(Command(name, call=True))
        if t.kind == "WORD" and not t.value.startswith("-") and t.value.lower() not in KEYWORDS | {"in"}:
            self.next()
            return self.command_args(Command(t.value))
        if t.kind == "WORD" and t.value.lower() in ("foreach", "for") and self.peek(1).kind != "LPAREN":
            self.next()
            return self.command_args(Command("ForEach-Object"))
        return self.expression()

    def command_args(self, cmd: Command) -> Command:
        while True:
            t = self.peek()
            if t.kind in ("PIPE", "SEMI", "NL", "RPAREN", "RBRACE", "EOF", "REDIR") or \
                    (t.kind == "OP" and t.value in ("&&", "||")):
                return cmd
            if t.kind == "WORD" and t.value.startswith("-") and len(t.value) > 1 and \
                    (t.value[1].isalpha() or t.value[1] == "-"):
                self.next()
                name = t.value[1:]
                if name.endswith(":"):
                    cmd.args.append(("param", name[:-1]))
                    cmd.args.append(("value", self.arg_value()))
                else:
                    cmd.args.append(("param", name))
                continue
            if t.kind == "OP" and t.value == "-":
                self.next()
                cmd.args.append(("value", Const("-")))
                continue
            cmd.args.append(("value", self.arg_value()))

    def arg_value(self) -> Any:
        items = [self.arg_atom()]
        while self.at("COMMA"):
            self.next()
            self.skip_newlines_only()
            items.append(self.arg_atom())
        return items[0] if len(items) == 1 else ArrayLit(items)

    def arg_atom(self) -> Any:
        """One command argument; adjacent pieces join into one word (``$env:SystemRoot\\System32``)."""
        t = self.peek()
        value: Any
        if t.kind == "WORD" or (t.kind == "OP" and t.value in ("+", "*", "/", "%", "!")):
            self.next()
            value = Const(t.value)
        elif t.kind == "NUM":
            self.next()
            value = self.postfix(Const(_number(t.value)))
        else:
            value = self.postfix(self.primary())
        while self.peek().kind in ("WORD", "XSTR", "STR", "VAR", "NUM") and not self.peek().space:
            value = Binary("concat", value, self.arg_atom_simple())
        return value

    def arg_atom_simple(self) -> Any:
        t = self.next()
        if t.kind in ("WORD", "NUM"):
            return Const(t.value)
        if t.kind == "STR":
            return Const(t.value)
        if t.kind == "XSTR":
            return Expand(t.value)
        return Var(t.value)

    # expressions ---------------------------------------------------------------------
    def expression(self) -> Any:
        return self.logical()

    def logical(self) -> Any:
        left = self.comparison()
        while self.peek().kind == "WORD" and self.peek().value.lower().lstrip("-") in LOGICAL and \
                self.peek().value.startswith("-"):
            op = self.next().value.lower().lstrip("-")
            self.skip_newlines_only()
            left = Binary(op, left, self.comparison())
        return left

    def comparison(self) -> Any:
        left = self.additive()
        while True:
            t = self.peek()
            if t.kind == "WORD" and t.value.startswith("-"):
                op = t.value.lower()[1:]
                base = op[1:] if op[:1] in ("i", "c") and op[1:] in COMPARISON else op
                if base in COMPARISON:
                    self.next()
                    left = Binary(base if op[:1] != "c" or op[1:] not in COMPARISON else "c" + base, left,
                                  self.additive())
                    continue
            return left

    def additive(self) -> Any:
        left = self.multiplicative()
        while self.at("OP", "+") or self.at("OP", "-"):
            op = self.next().value
            left = Binary(op, left, self.multiplicative())
        return left

    def multiplicative(self) -> Any:
        left = self.array()
        while self.at("OP", "*") or self.at("OP", "/") or self.at("OP", "%"):
            op = self.next().value
            left = Binary(op, left, self.array())
        return left

    def array(self) -> Any:
        first = self.unary()
        if not self.at("COMMA"):
            return first
        items = [first]
        while self.at("COMMA"):
            self.next()
            self.skip_newlines_only()
            items.append(self.unary())
        return ArrayLit(items)

    def unary(self) -> Any:
        t = self.peek()
        if (t.kind == "OP" and t.value == "!") or (t.kind == "WORD" and t.value.lower() == "-not"):
            self.next()
            return Unary("not", self.unary())
        if t.kind == "OP" and t.value == "-":
            self.next()
            return Unary("neg", self.unary())
        if t.kind == "WORD" and t.value.lower() == "-join":
            self.next()
            return Unary("join", self.unary())
        if t.kind == "TYPE" and self.peek(1).kind not in ("STATIC",):
            self.next()
            if self.peek().kind in ("NL", "SEMI", "EOF", "RPAREN", "PIPE", "RBRACE", "COMMA"):
                return TypeLit(t.value)
            return Cast(t.value, self.unary())
        return self.postfix(self.primary())

    def primary(self) -> Any:
        t = self.next()
        k = t.kind
        if k == "NUM":
            return Const(_number(t.value))
        if k == "STR":
            return Const(t.value)
        if k == "XSTR":
            return Expand(t.value)
        if k == "VAR":
            return Var(t.value)
        if k == "TYPE":
            return TypeLit(t.value)
        if k == "LPAREN":
            self.skip_newlines_only()
            inner = self.pipeline() if not self.keyword("if", "foreach", "while") else SubExpr([self.statement()])
            self.skip_newlines_only()
            self.expect("RPAREN")
            return inner
        if k in ("SUBEXPR", "ARRAY"):
            body = self.statements(("RPAREN",))
            self.expect("RPAREN")
            return SubExpr(body, array=k == "ARRAY")
        if k == "HASH":
            items: list[tuple[Any, Any]] = []
            while True:
                self.skip_nl()
                if self.at("RBRACE"):
                    self.next()
                    return HashLit(items)
                key_tok = self.next()
                key: Any = Const(key_tok.value) if key_tok.kind in ("WORD", "STR", "NUM") else Expand(key_tok.value)
                if not self.at("ASSIGN", "="):
                    raise PSParseError("Missing '=' operator after key in hash literal.")
                self.next()
                self.skip_newlines_only()
                items.append((key, self.statement_value()))
        if k == "LBRACE":
            start = self.pos
            body = self.statements(("RBRACE",))
            text = self.src[self.toks[start].pos:self.peek().pos].strip()
            self.expect("RBRACE")
            return ScriptBlock(body, text)
        if k == "WORD":
            return Const(t.value)
        raise PSParseError(f"Unexpected token '{t.value or k}' in expression or statement.")

    def statement_value(self) -> Any:
        value = self.pipeline()
        return value

    def postfix(self, node: Any) -> Any:
        while True:
            t = self.peek()
            if t.kind == "MEMBER" or t.kind == "STATIC":
                self.next()
                args = None
                if self.at("LPAREN") and not self.peek().space:
                    self.next()
                    args = []
                    while not self.at("RPAREN"):
                        args.append(self.unary_arg())
                        if self.at("COMMA"):
                            self.next()
                    self.next()
                node = Member(node, t.value, args, static=t.kind == "STATIC")
            elif t.kind == "LBRACKET":
                self.next()
                idx = self.expression()
                self.expect("RBRACKET")
                node = Index(node, idx)
            else:
                return node

    def unary_arg(self) -> Any:
        self.skip_newlines_only()
        value = self.comparison()
        self.skip_newlines_only()
        return value


def _number(text: str) -> int | float:
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)([kKmMgG][bB])?", text)
    if not m:
        return 0
    value = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    if m.group(2):
        value = value * {"k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2)[0].lower()]
    return value


def parse(src: str) -> list[Any]:
    return Parser(src).script()
