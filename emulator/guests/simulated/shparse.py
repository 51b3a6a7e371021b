"""A POSIX-shell parser for the simulated Linux guest: enough of bash for provisioning scripts.

Covers quoting (single, double, ``$'...'``, backslash), parameter expansion (``$x``, ``${x:-d}``,
``${#x}``, ``${x%pat}`` ...), command substitution, ``$((arith))``, redirections (``> >> < 2>&1
&> <<EOF <<-EOF <<<``), pipelines, ``&& || ; &``, ``!``, ``if/elif/else``, ``for``, ``while/until``,
``case``, ``{ }``, ``( )`` and functions. Not covered: arrays, ``[[ a && b ]]`` with operators inside,
process substitution, job control. ``Incomplete`` tells an interactive shell to read another line.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ParseError(Exception):
    pass


class Incomplete(ParseError):
    """The input ended inside a construct (open quote, ``if`` without ``fi``, trailing ``&&``)."""


# word parts ---------------------------------------------------------------------------
@dataclass
class Lit:
    text: str
    quoted: bool = False


@dataclass
class Param:
    name: str
    op: str = ""  # "", "-", ":-", "=", ":=", "+", ":+", "?", ":?", "#", "##", "%", "%%", "len", "/", "//"
    arg: str = ""
    quoted: bool = False


@dataclass
class CmdSub:
    src: str
    quoted: bool = False


@dataclass
class Arith:
    src: str
    quoted: bool = False


Part = Lit | Param | CmdSub | Arith


@dataclass
class Word:
    parts: list[Part]
    raw: str

    def literal(self) -> str | None:
        """The word's text if it is one plain unquoted literal (keywords, names), else None."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Lit) and not self.parts[0].quoted:
            return self.parts[0].text
        return None

    def unquoted_text(self) -> str:
        """Quote removal without expansion (heredoc delimiters)."""
        return "".join(p.text if isinstance(p, Lit) else "$" + p.name if isinstance(p, Param) else "" for p in self.parts)

    def has_quotes(self) -> bool:
        return any(getattr(p, "quoted", False) for p in self.parts)


# AST ----------------------------------------------------------------------------------
@dataclass
class Redir:
    fd: int | None
    op: str
    target: Word | None = None
    heredoc: str | None = None
    expand: bool = True


@dataclass
class Simple:
    assigns: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirs: list[Redir] = field(default_factory=list)
    line: int = 1


@dataclass
class Seq:
    items: list[AndOr] = field(default_factory=list)


@dataclass
class Pipeline:
    cmds: list[Command]
    negate: bool = False


@dataclass
class AndOr:
    first: Pipeline
    rest: list[tuple[str, Pipeline]] = field(default_factory=list)
    background: bool = False


@dataclass
class If:
    clauses: list[tuple[Seq, Seq]]
    orelse: Seq | None = None
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class For:
    var: str
    words: list[Word] | None
    body: Seq
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class While:
    cond: Seq
    body: Seq
    until: bool = False
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class Case:
    word: Word
    arms: list[tuple[list[Word], Seq]]
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class Group:
    body: Seq
    subshell: bool = False
    redirs: list[Redir] = field(default_factory=list)


@dataclass
class FuncDef:
    name: str
    body: Command


Command = Simple | If | For | While | Case | Group | FuncDef

RESERVED = {"if", "then", "elif", "else", "fi", "for", "in", "do", "done", "while", "until", "case", "esac",
            "{", "}", "!", "function"}
OPERATORS = ["&&", "||", ";;", ";", "&", "|", "(", ")"]
REDIR_OPS = ["<<<", "<<-", "&>>", "<<", ">>", ">&", "<&", "&>", ">|", "<>", ">", "<"]


@dataclass
class Token:
    kind: str  # WORD, OP, REDIR, NL, EOF
    value: str = ""
    word: Word | None = None
    redir: Redir | None = None
    line: int = 1


# lexer ----------------------------------------------------------------------------------
class Lexer:
    def __init__(self, src: str) -> None:
        self.s = src
        self.i = 0
        self.line = 1
        self.tokens: list[Token] = []
        self.pending: list[tuple[Redir, str, bool]] = []  # heredocs waiting for the end of the line

    def run(self) -> list[Token]:
        s = self.s
        while True:
            self._skip_blanks()
            if self.i >= len(s):
                break
            c = s[self.i]
            if c == "#":
                while self.i < len(s) and s[self.i] != "\n":
                    self.i += 1
                continue
            if c == "\n":
                self.tokens.append(Token("NL", "\n", line=self.line))
                self.i += 1
                self.line += 1
                self._read_heredocs()
                continue
            op = self._match(REDIR_OPS)
            if op:
                self._redir(None, op)
                continue
            op = self._match(OPERATORS)
            if op:
                self.tokens.append(Token("OP", op, line=self.line))
                self.i += len(op)
                continue
            start = self.i
            word = self._word()
            if word.literal() is not None and word.literal().isdigit() and self.i < len(s) and s[self.i] in "<>":  # type: ignore[union-attr]
                op = self._match(REDIR_OPS)
                if op and not op.startswith("&"):
                    self._redir(int(word.literal() or "0"), op)
                    continue
            word.raw = s[start:self.i]
            self.tokens.append(Token("WORD", word.raw, word=word, line=self.line))
        if self.pending:
            raise Incomplete("here-document delimited by end-of-file")
        self.tokens.append(Token("EOF", line=self.line))
        return self.tokens

    def _skip_blanks(self) -> None:
        s = self.s
        while self.i < len(s):
            if s[self.i] in " \t\r":
                self.i += 1
            elif s.startswith("\\\n", self.i):
                self.i += 2
                self.line += 1
            else:
                break

    def _match(self, ops: list[str]) -> str | None:
        for op in ops:
            if self.s.startswith(op, self.i):
                return op
        return None

    def _redir(self, fd: int | None, op: str) -> None:
        self.i += len(op)
        redir = Redir(fd, op)
        self.tokens.append(Token("REDIR", op, redir=redir, line=self.line))
        if op in ("<<", "<<-"):
            self._skip_blanks()
            start = self.i
            word = self._word()
            if self.i == start:
                raise ParseError("syntax error near unexpected token `newline'")
            redir.expand = not word.has_quotes()
            self.pending.append((redir, word.unquoted_text(), op == "<<-"))

    def _read_heredocs(self) -> None:
        for redir, delim, strip in self.pending:
            lines = []
            while True:
                if self.i >= len(self.s):
                    raise Incomplete(f"here-document delimited by end-of-file (wanted `{delim}')")
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                line = self.s[self.i:end]
                self.i = min(end + 1, len(self.s))
                self.line += 1
                if strip:
                    line = line.lstrip("\t")
                if line == delim:
                    break
                lines.append(line + "\n")
            redir.heredoc = "".join(lines)
        self.pending = []

    def _word(self) -> Word:
        s = self.s
        parts: list[Part] = []
        lit: list[str] = []

        def flush() -> None:
            if lit:
                parts.append(Lit("".join(lit)))
                lit.clear()

        while self.i < len(s):
            c = s[self.i]
            if c in " \t\r\n;&|<>()":
                break
            if c == "\\":
                if self.i + 1 >= len(s):
                    self.i += 1
                    break
                if s[self.i + 1] == "\n":
                    self.i += 2
                    self.line += 1
                    continue
                flush()
                parts.append(Lit(s[self.i + 1], True))
                self.i += 2
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise Incomplete("unexpected EOF while looking for matching `''")
                flush()
                parts.append(Lit(s[self.i + 1:end], True))
                self.line += s.count("\n", self.i, end)
                self.i = end + 1
            elif c == '"':
                flush()
                parts.extend(self._double())
            elif c == "$" and s.startswith("$'", self.i):
                flush()
                parts.append(Lit(self._ansi_c(), True))
            elif c == "$":
                flush()
                parts.append(self._dollar(quoted=False))
            elif c == "`":
                flush()
                parts.append(CmdSub(self._backtick(), False))
            else:
                lit.append(c)
                self.i += 1
        flush()
        return Word(parts, "")

    def _double(self) -> list[Part]:
        s = self.s
        self.i += 1
        parts: list[Part] = []
        lit: list[str] = []
        while True:
            if self.i >= len(s):
                raise Incomplete('unexpected EOF while looking for matching `"\'')
            c = s[self.i]
            if c == '"':
                self.i += 1
                break
            if c == "\\" and self.i + 1 < len(s) and s[self.i + 1] in '$`"\\\n':
                if s[self.i + 1] != "\n":
                    lit.append(s[self.i + 1])
                self.i += 2
            elif c == "$":
                if lit:
                    parts.append(Lit("".join(lit), True))
                    lit = []
                parts.append(self._dollar(quoted=True))
            elif c == "`":
                if lit:
                    parts.append(Lit("".join(lit), True))
                    lit = []
                parts.append(CmdSub(self._backtick(), True))
            else:
                if c == "\n":
                    self.line += 1
                lit.append(c)
                self.i += 1
        if lit or not parts:
            parts.append(Lit("".join(lit), True))
        return parts

    def _ansi_c(self) -> str:
        s = self.s
        self.i += 2
        out: list[str] = []
        escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a", "e": "\x1b", "0": "\0"}
        while True:
            if self.i >= len(s):
                raise Incomplete("unexpected EOF while looking for matching `''")
            c = s[self.i]
            if c == "'":
                self.i += 1
                return "".join(out)
            if c == "\\" and self.i + 1 < len(s):
                out.append(escapes.get(s[self.i + 1], "\\" + s[self.i + 1]))
                self.i += 2
            else:
                out.append(c)
                self.i += 1

    def _balanced(self, start: int, open_: str, close: str) -> int:
        """Index of the ``close`` matching an already-consumed ``open_`` at ``start``, skipping quotes."""
        s = self.s
        depth = 1
        i = start
        while i < len(s):
            c = s[i]
            if c == "\\":
                i += 2
                continue
            if c == "'" and open_ != "{":
                end = s.find("'", i + 1)
                if end < 0:
                    break
                i = end + 1
                continue
            if c == '"':
                i += 1
                while i < len(s) and s[i] != '"':
                    i += 2 if s[i] == "\\" else 1
                i += 1
                continue
            if c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        raise Incomplete(f"unexpected EOF while looking for matching `{close}'")

    def _dollar(self, quoted: bool) -> Part:
        s = self.s
        i = self.i + 1
        if s.startswith("((", i):
            end = self._balanced(i + 2, "(", ")")
            if end + 1 >= len(s) or s[end + 1] != ")":
                raise ParseError("syntax error in arithmetic expansion")
            self.i = end + 2
            return Arith(s[i + 2:end], quoted)
        if s.startswith("(", i):
            end = self._balanced(i + 1, "(", ")")
            self.line += s.count("\n", i, end)
            self.i = end + 1
            return CmdSub(s[i + 1:end], quoted)
        if s.startswith("{", i):
            end = self._balanced(i + 1, "{", "}")
            self.i = end + 1
            return _brace_param(s[i + 1:end], quoted)
        if i < len(s) and (s[i].isalpha() or s[i] == "_"):
            j = i
            while j < len(s) and (s[j].isalnum() or s[j] == "_"):
                j += 1
            self.i = j
            return Param(s[i:j], quoted=quoted)
        if i < len(s) and s[i] in "0123456789?$#@*!-":
            self.i = i + 1
            return Param(s[i], quoted=quoted)
        self.i = i
        return Lit("$", quoted)

    def _backtick(self) -> str:
        end = self.s.find("`", self.i + 1)
        if end < 0:
            raise Incomplete("unexpected EOF while looking for matching ``'")
        src = self.s[self.i + 1:end].replace("\\`", "`")
        self.i = end + 1
        return src


def _brace_param(body: str, quoted: bool) -> Param:
    if body.startswith("#") and len(body) > 1:
        return Param(body[1:], "len", quoted=quoted)
    j = 0
    while j < len(body) and (body[j].isalnum() or body[j] == "_" or (j == 0 and body[j] in "?$#@*!")):
        j += 1
        if j == 1 and body[0] in "?$#@*!":
            break
    name, rest = body[:j], body[j:]
    if not name:
        raise ParseError(f"${{{body}}}: bad substitution")
    for op in (":-", ":=", ":+", ":?", "##", "%%", "//", "-", "=", "+", "?", "#", "%", "/"):
        if rest.startswith(op):
            return Param(name, op, rest[len(op):], quoted)
    if rest:
        raise ParseError(f"${{{body}}}: bad substitution")
    return Param(name, quoted=quoted)


# parser -----------------------------------------------------------------------------------
class Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.pos = 0

    def peek(self) -> Token:
        return self.toks[self.pos]

    def next(self) -> Token:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def _is(self, kind: str, value: str | None = None) -> bool:
        t = self.peek()
        return t.kind == kind and (value is None or t.value == value)

    def _reserved(self, *words: str) -> bool:
        t = self.peek()
        return t.kind == "WORD" and t.word is not None and t.word.literal() in words

    def _expect_word(self, word: str) -> None:
        self._skip_nl()
        t = self.peek()
        if t.kind == "EOF":
            raise Incomplete(f"syntax error: unexpected end of file (expecting `{word}')")
        if not self._reserved(word):
            raise ParseError(f"syntax error near unexpected token `{t.value or 'newline'}'")
        self.next()

    def _skip_nl(self) -> None:
        while self._is("NL"):
            self.next()

    def program(self) -> Seq:
        seq = self.seq(())
        if not self._is("EOF"):
            t = self.peek()
            raise ParseError(f"syntax error near unexpected token `{t.value}'")
        return seq

    def seq(self, stops: tuple[str, ...]) -> Seq:
        items: list[AndOr] = []
        while True:
            while self._is("NL") or self._is("OP", ";"):
                self.next()
            if self._is("EOF") or self._is("OP", ")") or self._is("OP", ";;") or (stops and self._reserved(*stops)):
                return Seq(items)
            ao = self.and_or()
            items.append(ao)
            if self._is("OP", "&"):
                self.next()
                ao.background = True
            elif self._is("OP", ";") or self._is("NL"):
                self.next()
            else:
                return Seq(items)

    def and_or(self) -> AndOr:
        ao = AndOr(self.pipeline())
        while self._is("OP", "&&") or self._is("OP", "||"):
            op = self.next().value
            self._skip_nl()
            if self._is("EOF"):
                raise Incomplete("syntax error: unexpected end of file")
            ao.rest.append((op, self.pipeline()))
        return ao

    def pipeline(self) -> Pipeline:
        negate = False
        if self._reserved("!"):
            self.next()
            negate = True
        cmds = [self.command()]
        while self._is("OP", "|"):
            self.next()
            self._skip_nl()
            if self._is("EOF"):
                raise Incomplete("syntax error: unexpected end of file")
            cmds.append(self.command())
        return Pipeline(cmds, negate)

    def command(self) -> Command:
        t = self.peek()
        if t.kind == "EOF":
            raise Incomplete("syntax error: unexpected end of file")
        cmd: Command
        if self._reserved("then", "elif", "else", "fi", "do", "done", "esac", "}", "in"):
            raise ParseError(f"syntax error near unexpected token `{t.value}'")
        if self._reserved("if"):
            cmd = self._if()
        elif self._reserved("for"):
            cmd = self._for()
        elif self._reserved("while", "until"):
            until = self.next().word.literal() == "until"  # type: ignore[union-attr]
            cond = self.seq(("do",))
            self._expect_word("do")
            body = self.seq(("done",))
            self._expect_word("done")
            cmd = While(cond, body, until)
        elif self._reserved("case"):
            cmd = self._case()
        elif self._reserved("{"):
            self.next()
            body = self.seq(("}",))
            self._expect_word("}")
            cmd = Group(body)
        elif self._is("OP", "("):
            self.next()
            body = self.seq(())
            self._skip_nl()
            if self._is("EOF"):
                raise Incomplete("syntax error: unexpected end of file")
            if not self._is("OP", ")"):
                raise ParseError(f"syntax error near unexpected token `{self.peek().value}'")
            self.next()
            cmd = Group(body, subshell=True)
        elif self._reserved("function"):
            self.next()
            name = self.next()
            if self._is("OP", "("):
                self.next()
                self._expect_op(")")
            self._skip_nl()
            return FuncDef(name.value, self.command())
        elif (t.kind == "WORD" and t.word is not None and t.word.literal() and _is_name(t.word.literal() or "")
              and self.toks[self.pos + 1].kind == "OP" and self.toks[self.pos + 1].value == "("
              and self.toks[self.pos + 2].kind == "OP" and self.toks[self.pos + 2].value == ")"):
            self.pos += 3
            self._skip_nl()
            return FuncDef(t.value, self.command())
        elif t.kind in ("WORD", "REDIR"):
            return self._simple()
        else:
            raise ParseError(f"syntax error near unexpected token `{t.value if t.kind != 'NL' else 'newline'}'")
        while self._is("REDIR"):
            cmd.redirs.append(self._redirect())  # type: ignore[union-attr]
        return cmd

    def _expect_op(self, op: str) -> None:
        if not self._is("OP", op):
            raise ParseError(f"syntax error near unexpected token `{self.peek().value}'")
        self.next()

    def _if(self) -> If:
        self.next()
        clauses = []
        orelse = None
        cond = self.seq(("then",))
        self._expect_word("then")
        body = self.seq(("elif", "else", "fi"))
        clauses.append((cond, body))
        while True:
            self._skip_nl()
            if self._reserved("elif"):
                self.next()
                cond = self.seq(("then",))
                self._expect_word("then")
                clauses.append((cond, self.seq(("elif", "else", "fi"))))
            elif self._reserved("else"):
                self.next()
                orelse = self.seq(("fi",))
            else:
                self._expect_word("fi")
                return If(clauses, orelse)

    def _for(self) -> For:
        self.next()
        name = self.next()
        if name.kind != "WORD" or not _is_name(name.value):
            raise ParseError(f"`{name.value}': not a valid identifier")
        words: list[Word] | None = None
        self._skip_nl()
        if self._reserved("in"):
            self.next()
            words = []
            while self._is("WORD"):
                words.append(self.next().word)  # type: ignore[arg-type]
        while self._is("OP", ";") or self._is("NL"):
            self.next()
        self._expect_word("do")
        body = self.seq(("done",))
        self._expect_word("done")
        return For(name.value, words, body)

    def _case(self) -> Case:
        self.next()
        word = self.next()
        if word.kind != "WORD":
            raise ParseError("syntax error in case")
        self._expect_word("in")
        arms: list[tuple[list[Word], Seq]] = []
        while True:
            self._skip_nl()
            if self._reserved("esac"):
                self.next()
                return Case(word.word, arms)  # type: ignore[arg-type]
            if self._is("EOF"):
                raise Incomplete("syntax error: unexpected end of file (expecting `esac')")
            if self._is("OP", "("):
                self.next()
            pats = []
            while True:
                t = self.next()
                if t.kind != "WORD":
                    raise ParseError(f"syntax error near unexpected token `{t.value}'")
                assert t.word is not None
                pats.append(t.word)
                if self._is("OP", "|"):
                    self.next()
                    continue
                self._expect_op(")")
                break
            body = self.seq(("esac",))
            if self._is("OP", ";;"):
                self.next()
            arms.append((pats, body))

    def _redirect(self) -> Redir:
        tok = self.next()
        redir = tok.redir
        assert redir is not None
        if redir.op in ("<<", "<<-"):
            return redir
        t = self.next()
        if t.kind != "WORD":
            raise ParseError(f"syntax error near unexpected token `{t.value or 'newline'}'")
        redir.target = t.word
        return redir

    def _simple(self) -> Simple:
        cmd = Simple(line=self.peek().line)
        while True:
            t = self.peek()
            if t.kind == "REDIR":
                cmd.redirs.append(self._redirect())
            elif t.kind == "WORD":
                self.next()
                word = t.word
                assert word is not None
                first = word.parts[0] if word.parts else None
                if (not cmd.words and isinstance(first, Lit) and not first.quoted and "=" in first.text
                        and _is_name(first.text.split("=", 1)[0])):
                    name, _, rest = first.text.partition("=")
                    value = Word(([Lit(rest)] if rest else []) + word.parts[1:], word.raw[len(name) + 1:])
                    cmd.assigns.append((name, value))
                else:
                    cmd.words.append(word)
            else:
                return cmd


def _is_name(text: str) -> bool:
    return bool(text) and (text[0].isalpha() or text[0] == "_") and all(c.isalnum() or c == "_" for c in text)


def parse(src: str) -> Seq:
    return Parser(Lexer(src).run()).program()


def parse_word(src: str) -> Word:
    """One word from text (a ``${x:-default}`` argument), as if it appeared inside double quotes."""
    lexer = Lexer('"' + src.replace('"', '\\"') + '"')
    return lexer._word()
