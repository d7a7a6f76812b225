"""A small, safe condition language over event fields: own tokenizer, parser, schema check and evaluator.

Grammar (no calls, no attribute access beyond field paths, bounded size and depth)::

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := operand (("==" | "!=" | "<" | "<=" | ">" | ">=") operand | ["not"] "in" list)?
    operand    := literal | path | "(" expr ")"
    list       := "[" [literal ("," literal)*] "]"
    literal    := number | 'string' | "string" | true | false | null
    path       := name ("." name)*
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MAX_LENGTH = 1_000
MAX_DEPTH = 20
MAX_NODES = 200
MAX_LIST = 100
MAX_NUMBER_DIGITS = 18

Scalar = str | int | Decimal | bool | None


class RuleError(ValueError):
    """The expression is not a valid, safe condition; the message says where and why."""


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "str", "name", "op", "kw", "end"
    text: str
    value: Scalar
    pos: int


@dataclass(frozen=True)
class Literal:
    value: Scalar


@dataclass(frozen=True)
class Path:
    parts: tuple[str, ...]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Member:
    item: Node
    options: tuple[Scalar, ...]
    negated: bool


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Literal | Path | Compare | Member | BoolOp | Not

_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_TOKEN = re.compile(
    r"""(?P<ws>\s+)
      |(?P<num>-?\d+(?:\.\d+)?)
      |(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      |(?P<name>[A-Za-z][A-Za-z0-9_]*)
      |(?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.)""",
    re.VERBOSE,
)
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_LENGTH:
        raise RuleError(f"the expression is longer than {MAX_LENGTH} characters")
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise RuleError(f"unexpected character {text[pos]!r} at {pos}")
        kind = match.lastgroup or ""
        lexeme = match.group()
        if kind != "ws":
            tokens.append(_token(kind, lexeme, pos))
        pos = match.end()
    tokens.append(Token("end", "", None, len(text)))
    return tokens


def _token(kind: str, lexeme: str, pos: int) -> Token:
    if kind == "num":
        if len(lexeme.replace("-", "").replace(".", "")) > MAX_NUMBER_DIGITS:
            raise RuleError(f"the number at {pos} has more than {MAX_NUMBER_DIGITS} digits")
        return Token(kind, lexeme, Decimal(lexeme) if "." in lexeme else int(lexeme), pos)
    if kind == "str":
        body = lexeme[1:-1]
        return Token(kind, lexeme, re.sub(r"\\(.)", r"\1", body), pos)
    if kind == "name" and lexeme in _KEYWORDS:
        constants: dict[str, Scalar] = {"true": True, "false": False, "null": None}
        if lexeme in constants:
            return Token("lit", lexeme, constants[lexeme], pos)
        return Token("kw", lexeme, None, pos)
    return Token(kind, lexeme, None, pos)


class _Parser:
    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.nodes = 0
        self.depth = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.current
        self.index += 1
        return token

    def accept(self, text: str) -> bool:
        if self.current.kind in ("op", "kw") and self.current.text == text:
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise RuleError(
                f"expected {text!r} at {self.current.pos}, found {self.current.text or 'the end'!r}"
            )

    def node(self, node: Node) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise RuleError(f"the expression has more than {MAX_NODES} parts")
        return node

    def parse(self) -> Node:
        tree = self.expression()
        if self.current.kind != "end":
            raise RuleError(f"unexpected {self.current.text!r} at {self.current.pos}")
        return tree

    def expression(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleError(f"the expression nests deeper than {MAX_DEPTH} levels")
        try:
            return self.boolean("or", self.conjunction)
        finally:
            self.depth -= 1

    def conjunction(self) -> Node:
        return self.boolean("and", self.negation)

    def boolean(self, op: str, operand: Any) -> Node:
        items = [operand()]
        while self.accept(op):
            items.append(operand())
        return items[0] if len(items) == 1 else self.node(BoolOp(op, tuple(items)))

    def negation(self) -> Node:
        if self.accept("not"):
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise RuleError(f"the expression nests deeper than {MAX_DEPTH} levels")
            try:
                return self.node(Not(self.negation()))
            finally:
                self.depth -= 1
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        token = self.current
        if token.kind == "op" and token.text in _COMPARISONS:
            self.take()
            return self.node(Compare(token.text, left, self.operand()))
        negated = self.accept("not")
        if negated or token.text == "in":
            self.expect("in")
            return self.node(Member(left, self.literal_list(), negated))
        return left

    def operand(self) -> Node:
        token = self.current
        if self.accept("("):
            inner = self.expression()
            self.expect(")")
            return inner
        if token.kind in ("num", "str", "lit"):
            self.take()
            return self.node(Literal(token.value))
        if token.kind == "name":
            return self.node(self.path())
        raise RuleError(f"expected a value or a field at {token.pos}, found {token.text or 'the end'!r}")

    def path(self) -> Path:
        parts = [self.take().text]
        while self.accept("."):
            if self.current.kind != "name":
                raise RuleError(f"expected a field name at {self.current.pos}")
            parts.append(self.take().text)
        return Path(tuple(parts))

    def literal_list(self) -> tuple[Scalar, ...]:
        self.expect("[")
        values: list[Scalar] = []
        while not self.accept("]"):
            if values:
                self.expect(",")
            token = self.take()
            if token.kind not in ("num", "str", "lit"):
                raise RuleError(f"a list holds only literal values (at {token.pos})")
            values.append(token.value)
            if len(values) > MAX_LIST:
                raise RuleError(f"a list holds at most {MAX_LIST} values")
        return tuple(values)


def parse(text: str) -> Node:
    """The syntax tree of a condition; an empty text is the condition that always holds."""
    if not text.strip():
        return Literal(True)
    return _Parser(tokenize(text)).parse()


@functools.lru_cache(maxsize=4096)
def compiled(text: str) -> Node:
    """The parsed tree of a saved condition (checked when saved), cached: events re-use their rules' trees."""
    return parse(text)


Predicate = Callable[[Mapping[str, Any]], bool]


@functools.lru_cache(maxsize=4096)
def predicate(text: str) -> Predicate:
    """A saved condition as a function of an event's JSON data: what `evaluate` says, with no tree walk."""
    check = _closure(compiled(text))
    return lambda data: bool(check(data))


def _closure(node: Node) -> Callable[[Mapping[str, Any]], Any]:
    match node:
        case Literal(value):
            return lambda data: value
        case Path((key,)):
            return lambda data: data.get(key)  # the event's data is a mapping
        case Path(parts):
            return lambda data: lookup(data, parts)
        case Not(item):
            inner = _closure(item)
            return lambda data: not inner(data)
        case BoolOp(op, items):
            return _boolean(op == "and", tuple(_closure(item) for item in items))
        case Member(item, options, negated):
            member = _closure(item)
            return lambda data: (member(data) in options) != negated
        case Compare(op, left, right):
            return _comparison(op, _closure(left), _closure(right))
    raise RuleError(f"cannot evaluate {node!r}")


def _boolean(conjunction: bool, items: tuple[Callable[[Mapping[str, Any]], Any], ...]) -> Predicate:
    # Loops rather than all()/any() over a generator: no generator object per event and rule.
    def all_of(data: Mapping[str, Any]) -> bool:
        for item in items:  # noqa: SIM110
            if not item(data):
                return False
        return True

    def any_of(data: Mapping[str, Any]) -> bool:
        for item in items:  # noqa: SIM110
            if item(data):
                return True
        return False

    return all_of if conjunction else any_of


def _comparison(
    op: str, left: Callable[[Mapping[str, Any]], Any], right: Callable[[Mapping[str, Any]], Any]
) -> Predicate:
    if op == "==":
        return lambda data: bool(left(data) == right(data))
    if op == "!=":
        return lambda data: bool(left(data) != right(data))
    return lambda data: _compare(op, left(data), right(data))


def evaluate(node: Node, data: Mapping[str, Any]) -> bool:
    """Whether the condition holds for an event's JSON data; a missing field compares as null."""
    return bool(_value(node, data))


def _value(node: Node, data: Mapping[str, Any]) -> Any:
    match node:
        case Literal(value):
            return value
        case Path(parts):
            return lookup(data, parts)
        case Not(item):
            return not _value(item, data)
        case BoolOp("and", items):
            return all(_value(item, data) for item in items)
        case BoolOp(_, items):
            return any(_value(item, data) for item in items)
        case Member(item, options, negated):
            return (_value(item, data) in options) != negated
        case Compare(op, left, right):
            return _compare(op, _value(left, data), _value(right, data))
    raise RuleError(f"cannot evaluate {node!r}")


def lookup(data: Any, path: str | Sequence[str]) -> Any:
    """The value at a field path (dotted text or parts) in JSON data, None when any step is missing."""
    for part in path.split(".") if isinstance(path, str) else path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if left is None or right is None or isinstance(left, bool) or isinstance(right, bool):
        return False
    numeric = (int, float, Decimal)
    if isinstance(left, numeric) != isinstance(right, numeric):
        return False  # ordering a number against text never holds
    if isinstance(left, float) or isinstance(right, float):
        left, right = Decimal(str(left)), Decimal(str(right))
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    if op == ">":
        return bool(left > right)
    return bool(left >= right)


def fields(node: Node) -> list[Path]:
    """Every field path the condition reads."""
    match node:
        case Path():
            return [node]
        case Not(item):
            return fields(item)
        case BoolOp(_, items):
            return [path for item in items for path in fields(item)]
        case Member(item, _, _):
            return fields(item)
        case Compare(_, left, right):
            return fields(left) + fields(right)
    return []


def check(node: Node, schema: Mapping[str, Any]) -> None:
    """Refuse a condition that reads a field the event does not have or compares it with the wrong kind."""
    match node:
        case Path():
            if "boolean" not in field_types(resolve(schema, node)):
                raise RuleError(f"{node.dotted} is not a true/false field; compare it with a value")
        case Not(item):
            check(item, schema)
        case BoolOp(_, items):
            for item in items:
                check(item, schema)
        case Member(item, options, _):
            if not isinstance(item, Path):
                raise RuleError("the left side of 'in' must be a field")
            field_schema = resolve(schema, item)
            for option in options:
                _check_literal(item, field_schema, option)
        case Compare(op, left, right):
            _check_comparison(op, left, right, schema)


def _check_comparison(op: str, left: Node, right: Node, schema: Mapping[str, Any]) -> None:
    for side in (left, right):
        if not isinstance(side, Path | Literal):
            raise RuleError(f"'{op}' compares a field with a value; wrap conditions with and/or instead")
    for path, other in ((left, right), (right, left)):
        if isinstance(path, Path):
            field_schema = resolve(schema, path)
            if op not in ("==", "!=") and not field_types(field_schema) & {"integer", "number", "string"}:
                raise RuleError(f"{path.dotted} cannot be ordered with '{op}'")
            if isinstance(other, Literal):
                _check_literal(path, field_schema, other.value)


def _check_literal(path: Path, field_schema: Mapping[str, Any], value: Scalar) -> None:
    allowed = _enum(field_schema)
    if allowed is not None and value is not None and value not in allowed:
        choices = ", ".join(repr(v) for v in allowed)
        raise RuleError(f"{path.dotted} is never {value!r}; it is one of {choices}")
    types = field_types(field_schema)
    kind = _literal_type(value)
    compatible = kind in types or (kind == "integer" and "number" in types)
    compatible = compatible or (kind == "number" and "integer" in types)
    if not compatible:
        raise RuleError(f"{path.dotted} holds {'/'.join(sorted(types))}, not {kind} {value!r}")


def _literal_type(value: Scalar) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, Decimal):
        return "number"
    return "string"


def resolve(schema: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    """The JSON Schema of the field a path names, following `$ref`s and nullable unions."""
    node = _deref(schema, schema)
    for depth, part in enumerate(path.parts):
        properties = _object_properties(schema, node)
        if part not in properties:
            where = path.parts[:depth]
            known = ", ".join(sorted(properties)) or "none"
            prefix = f"{'.'.join(where)}." if where else ""
            raise RuleError(f"the event has no field {prefix}{part}; known fields: {known}")
        node = _deref(schema, properties[part])
    return node


def _object_properties(root: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    properties: dict[str, Any] = dict(node.get("properties", {}))
    for option in node.get("anyOf", []):
        properties.update(_deref(root, option).get("properties", {}))
    return properties


def _deref(root: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    for _ in range(MAX_DEPTH):
        ref = node.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            return node
        node = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
    raise RuleError("the event schema's references nest too deep")


def field_types(node: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    declared = node.get("type")
    if isinstance(declared, str):
        found.add(declared)
    elif isinstance(declared, list):
        found.update(str(t) for t in declared)
    if "const" in node or "enum" in node:
        found.update(_literal_type(v) for v in _enum(node) or [])
    for option in node.get("anyOf", []) + node.get("oneOf", []):
        found |= field_types(option)
    return found


def _enum(node: Mapping[str, Any]) -> list[Scalar] | None:
    if "const" in node:
        return [node["const"]]
    if "enum" in node:
        return list(node["enum"])
    options = [o for o in node.get("anyOf", []) if o.get("type") != "null"]
    if options and all("const" in o or "enum" in o for o in options):
        return [v for o in options for v in (_enum(o) or [])]
    return None


def compile_condition(text: str, schema: Mapping[str, Any]) -> Node:
    """Parse and check a condition against the trigger event's JSON Schema (what saving a rule does)."""
    tree = parse(text)
    check(tree, schema)
    return tree
