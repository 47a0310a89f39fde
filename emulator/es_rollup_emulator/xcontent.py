"""Strict request-body parsing with Elasticsearch's error messages and token locations.

Two pieces:

* :func:`parse_json` — a JSON parser that keeps the ``[line:column]`` of every token
  (Jackson's 1-based token locations) and refuses duplicate keys like ES's strict parser.
* :class:`ObjectParser` — a small model of ES's ``ConstructingObjectParser``: declared fields,
  strict unknown-field errors with "did you mean", ``doesn't support values of type`` errors,
  ``Required [..]`` for missing constructor arguments, and the wrapping of inner failures into
  ``[l:c] [parser] failed to parse field [f]`` / ``Failed to build [parser] after last required
  field arrived``. The location used for "failed to parse field" is that of the last token of the
  field's value, which is where the Java parser stands when the failure surfaces.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import ESError, PLAIN, XCONTENT, parse_error
from .params import suggest


@dataclass
class Node:
    kind: str  # "object", "array", "string", "number", "boolean", "null"
    value: Any  # python value for scalars; list[(key, key_line, key_col, Node)] / list[Node]
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0

    @property
    def token(self) -> str:
        return {
            "object": "START_OBJECT", "array": "START_ARRAY", "string": "VALUE_STRING",
            "number": "VALUE_NUMBER", "boolean": "VALUE_BOOLEAN", "null": "VALUE_NULL",
        }[self.kind]

    @property
    def last_loc(self) -> tuple[int, int]:
        if self.kind in ("object", "array"):
            return self.end_line, self.end_col
        return self.line, self.col

    def to_python(self) -> Any:
        if self.kind == "object":
            return {k: v.to_python() for k, _, _, v in self.value}
        if self.kind == "array":
            return [v.to_python() for v in self.value]
        return self.value


_WS = re.compile(r"[ \t\r\n]*")
_NUM = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_STR = re.compile(r'"((?:[^"\\\x00-\x1f]|\\.)*)"', re.S)


class _Parser:
    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.line = 1
        self.line_start = 0

    def loc(self, i: int | None = None) -> tuple[int, int]:
        i = self.i if i is None else i
        line = self.s.count("\n", 0, i) + 1
        start = self.s.rfind("\n", 0, i) + 1
        return line, i - start + 1

    def fail(self, msg: str) -> ESError:
        line, col = self.loc()
        return parse_error(f"[{line}:{col}] {msg}")

    def ws(self) -> None:
        self.i = _WS.match(self.s, self.i).end()

    def value(self) -> Node:
        self.ws()
        if self.i >= len(self.s):
            raise self.fail("Unexpected end-of-input: expected a value")
        c = self.s[self.i]
        line, col = self.loc()
        if c == "{":
            return self.obj(line, col)
        if c == "[":
            return self.arr(line, col)
        if c == '"':
            return Node("string", self.string(), line, col)
        m = _NUM.match(self.s, self.i)
        if m and m.end() > self.i:
            self.i = m.end()
            text = m.group(0)
            num: Any = float(text) if (m.group(2) or m.group(3)) else int(text)
            return Node("number", num, line, col)
        for lit, val, kind in (("true", True, "boolean"), ("false", False, "boolean"), ("null", None, "null")):
            if self.s.startswith(lit, self.i):
                self.i += len(lit)
                return Node(kind, val, line, col)
        raise self.fail(f"Unexpected character ('{c}' (code {ord(c)})): expected a valid value")

    def string(self) -> str:
        m = _STR.match(self.s, self.i)
        if not m:
            raise self.fail("Unexpected end-of-input: was expecting closing quote for a string value")
        self.i = m.end()
        return json.loads(m.group(0))

    def obj(self, line: int, col: int) -> Node:
        self.i += 1
        items: list = []
        seen: set[str] = set()
        self.ws()
        if self.s.startswith("}", self.i):
            el, ec = self.loc()
            self.i += 1
            return Node("object", items, line, col, el, ec)
        while True:
            self.ws()
            if not self.s.startswith('"', self.i):
                c = self.s[self.i] if self.i < len(self.s) else "EOF"
                raise self.fail(f"Unexpected character ('{c}'): was expecting double-quote to start field name")
            kl, kc = self.loc()
            key = self.string()
            if key in seen:
                raise parse_error(f"[{kl}:{kc}] Duplicate field '{key}'")
            seen.add(key)
            self.ws()
            if not self.s.startswith(":", self.i):
                raise self.fail("Unexpected character: was expecting a colon to separate field name and value")
            self.i += 1
            items.append((key, kl, kc, self.value()))
            self.ws()
            if self.s.startswith(",", self.i):
                self.i += 1
                continue
            if self.s.startswith("}", self.i):
                el, ec = self.loc()
                self.i += 1
                return Node("object", items, line, col, el, ec)
            raise self.fail("Unexpected character: was expecting comma to separate Object entries")

    def arr(self, line: int, col: int) -> Node:
        self.i += 1
        items: list[Node] = []
        self.ws()
        if self.s.startswith("]", self.i):
            el, ec = self.loc()
            self.i += 1
            return Node("array", items, line, col, el, ec)
        while True:
            items.append(self.value())
            self.ws()
            if self.s.startswith(",", self.i):
                self.i += 1
                continue
            if self.s.startswith("]", self.i):
                el, ec = self.loc()
                self.i += 1
                return Node("array", items, line, col, el, ec)
            raise self.fail("Unexpected character: was expecting comma to separate Array entries")


def parse_json(text: str) -> Node:
    p = _Parser(text)
    node = p.value()
    return node


# -- ObjectParser model ---------------------------------------------------------------------------
STRING = frozenset({"string"})
STRING_OR_NULL = frozenset({"string", "null"})
INT = frozenset({"number", "string"})
LONG = INT
OBJECT = frozenset({"object"})
OBJECT_ARRAY = frozenset({"object", "array"})
STRING_ARRAY = frozenset({"array", "string"})


@dataclass
class Field:
    name: str
    tokens: frozenset[str]
    convert: Callable[[Node], Any]
    required: bool = False


@dataclass
class ObjectParser:
    """``ConstructingObjectParser`` with every declared field a constructor argument."""

    name: str
    fields: list[Field]
    build: Callable[[dict[str, Any]], Any]
    _by_name: dict[str, Field] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._by_name = {f.name: f for f in self.fields}

    def parse(self, node: Node) -> Any:
        if node.kind != "object":
            raise _at(parse_error(f"[{node.line}:{node.col}] [{self.name}] Expected START_OBJECT but was: {node.token}"),
                      (node.line, node.col))
        args: dict[str, Any] = {}
        built: list[Any] = []
        for key, kl, kc, value in node.value:
            spec = self._by_name.get(key)
            if spec is None:
                raise _at(parse_error(
                    f"[{kl}:{kc}] [{self.name}] unknown field [{key}]" + suggest(key, self._by_name)), (kl, kc))
            if value.kind not in spec.tokens:
                raise _at(parse_error(
                    f"[{value.line}:{value.col}] [{self.name}] {key} doesn't support values of type: {value.token}"),
                    (value.line, value.col))
            try:
                args[key] = spec.convert(value) if value.kind != "null" else None
                if len(args) == len(self.fields) and not built:
                    built.append(self._build(args))
            except ESError as e:
                # the Java parser reports where it stands when the failure surfaces
                ll, lc = getattr(e, "parser_loc", None) or value.last_loc
                raise _at(parse_error(f"[{ll}:{lc}] [{self.name}] failed to parse field [{key}]", e), (ll, lc))
        if built:
            return built[0]
        end = (node.end_line, node.end_col)
        missing = [f.name for f in self.fields if f.required and args.get(f.name) is None]
        if missing:
            raise _at(ESError("illegal_argument_exception", "Required [" + ", ".join(missing) + "]", 400, PLAIN), end)
        try:
            return self._build(args)
        except ESError as e:
            raise _at(e, end)

    def _build(self, args: dict[str, Any]) -> Any:
        try:
            return self.build(args)
        except ESError as e:
            if e.kind == XCONTENT:
                raise parse_error(f"failed to build [{self.name}] after last required field arrived", e)
            raise parse_error(f"Failed to build [{self.name}] after last required field arrived", e)


def _at(err: ESError, loc: tuple[int, int]) -> ESError:
    if getattr(err, "parser_loc", None) is None:
        err.parser_loc = loc  # type: ignore[attr-defined]
    return err


def as_string(node: Node) -> str:
    return node.value if node.kind == "string" else str(node.value)


def as_int(node: Node) -> int:
    v = node.value
    if node.kind == "string":
        try:
            return int(v.strip())
        except ValueError:
            raise ESError("number_format_exception", f'For input string: "{v}"', 400, PLAIN) from None
    if isinstance(v, float):
        return int(v)
    if not -(2**31) <= v < 2**31:
        raise ESError("input_coercion_exception", f"Numeric value ({v}) out of range of int (-2147483648 - 2147483647)", 400, PLAIN)
    return v


def as_string_list(node: Node) -> list[str]:
    if node.kind == "string":
        return [node.value]
    out = []
    for item in node.value:
        if item.kind not in ("string", "number", "boolean"):
            raise parse_error(f"[{item.line}:{item.col}] Failed to parse list:  expecting {item.token} to be a value")
        out.append(as_string(item))
    return out


def object_list(parser: ObjectParser) -> Callable[[Node], list[Any]]:
    def convert(node: Node) -> list[Any]:
        items = [node] if node.kind == "object" else node.value
        return [parser.parse(item) for item in items]
    return convert
