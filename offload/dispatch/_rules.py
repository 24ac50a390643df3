"""The `where` language of blackhole rules, and matching jobs against a set of rules.

An expression compares fields of a job to JSON literals and combines the comparisons:

    args.customer_id == 123
    kind == "ImportJob" and args.source in ["ftp", "s3"]
    not (meta.region == "eu") or tenant != null
    args["file-name"] != "x.csv" and args.items[0] >= 10

Fields are `args.<name>[.<name>…]`, `meta.<name>[…]` (a name that is not an identifier, or a
list index, in brackets), and `kind`, `queue`, `tenant`. Literals are numbers, strings,
`true`/`false`/`null` (Python's `True`/`False`/`None` too), lists and objects of those.
Operators: `==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not in`, `and`, `or`, `not`.

The text is parsed with Python's `ast` and every node is checked against this whitelist; it is
never evaluated as Python. Matching is total: a missing field is `null`, and an ordering
between values of different types (a string and a number) is simply false.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from offload._errors import InvalidRuleError
from offload._text import advice, text_problem

MAX_LENGTH = 2000
MAX_NODES = 400
ROOTS = ("args", "meta")
SCALARS = ("kind", "queue", "tenant")
_LITERAL_NAMES: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}
_EXAMPLE = "e.g. args.customer_id == 123"


class _Missing:
    """A field the job does not have; compares as `null`."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class Subject:
    """The parts of a job a rule can look at."""

    kind: str
    queue: str
    tenant: str | None
    args: Mapping[str, Any]
    meta: Mapping[str, Any]


Value = Callable[[Subject], Any]
Test = Callable[[Subject], bool]


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed `where` expression; `matches` tells whether a job satisfies it."""

    text: str
    test: Test

    def matches(self, subject: Subject) -> bool:
        return self.test(subject)


def parse_where(text: str | None) -> Condition:
    """Parse a `where` expression; `InvalidRuleError` names the problem. None or blank text
    is a condition that every job meets."""
    if text is None or not text.strip():
        return Condition("", lambda s: True)
    if not isinstance(text, str):
        raise InvalidRuleError(f"a where expression must be text, got {text!r}")
    source = text.strip()
    if len(source) > MAX_LENGTH:
        raise InvalidRuleError(
            f"where expression is too long ({len(source)} characters, at most {MAX_LENGTH})"
        )
    problem = text_problem(source)
    if problem is not None:
        raise InvalidRuleError(f"where expression holds {problem}: {advice(problem)}")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise InvalidRuleError(
            f"where expression {source!r} is not valid: {exc.msg}{where} ({_EXAMPLE})"
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise InvalidRuleError(f"where expression is too deeply nested: {source[:60]!r}…") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise InvalidRuleError(
            f"where expression is too complex ({nodes} parts, at most {MAX_NODES})"
        )
    return Condition(source, _Compiler(source).test(tree.body))


class _Compiler:
    """Turns a checked syntax tree into closures; refuses anything not whitelisted."""

    def __init__(self, source: str) -> None:
        self.source = source

    def refuse(self, node: ast.AST, problem: str) -> InvalidRuleError:
        segment = ast.get_source_segment(self.source, node) or ""
        col = getattr(node, "col_offset", None)
        at = f" at column {col + 1}" if col is not None else ""
        shown = f" `{segment}`" if segment else ""
        return InvalidRuleError(f"where expression: {problem}{shown}{at}")

    # --- conditions ---------------------------------------------------------------------
    def test(self, node: ast.expr) -> Test:
        if isinstance(node, ast.BoolOp):
            parts = [self.test(v) for v in node.values]
            if isinstance(node.op, ast.And):
                return lambda s: all(p(s) for p in parts)
            return lambda s: any(p(s) for p in parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.test(node.operand)
            return lambda s: not inner(s)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if self._is_field(node) or isinstance(node, ast.Constant | ast.Name):
            raise self.refuse(
                node, f"a field or value alone is not a condition; compare it ({_EXAMPLE})"
            )
        raise self.refuse(node, self._what(node))

    def compare(self, node: ast.Compare) -> Test:
        operands = [self.value(node.left), *(self.value(c) for c in node.comparators)]
        checks: list[Test] = []
        for i, op in enumerate(node.ops):
            compare = _OPERATORS.get(type(op))
            if compare is None:
                word = "is" if isinstance(op, ast.Is | ast.IsNot) else type(op).__name__
                raise self.refuse(node, f"operator {word!r} is not allowed; use == or !=")
            left, right = operands[i], operands[i + 1]
            checks.append(_pair(compare, left, right))
        if len(checks) == 1:
            return checks[0]
        return lambda s: all(c(s) for c in checks)

    # --- values ---------------------------------------------------------------------------
    def value(self, node: ast.expr) -> Value:
        if self._is_field(node):
            return self.field(node)
        literal = self.literal(node)
        return lambda s: literal

    def _is_field(self, node: ast.expr) -> bool:
        while isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        return isinstance(node, ast.Name) and node.id not in _LITERAL_NAMES

    def field(self, node: ast.expr) -> Value:
        path: list[str | int] = []
        top = node
        while isinstance(node, ast.Attribute | ast.Subscript):
            if isinstance(node, ast.Attribute):
                if node.attr.startswith("__"):
                    raise self.refuse(top, f"field name {node.attr!r} is not allowed")
                path.append(node.attr)
            else:
                key = node.slice
                if (
                    isinstance(key, ast.UnaryOp)
                    and isinstance(key.op, ast.USub)
                    and isinstance(key.operand, ast.Constant)
                    and type(key.operand.value) is int
                ):
                    key = ast.Constant(-key.operand.value)
                if not isinstance(key, ast.Constant) or isinstance(key.value, bool):
                    raise self.refuse(top, "a field in brackets must be a string or an integer")
                if not isinstance(key.value, str | int):
                    raise self.refuse(top, "a field in brackets must be a string or an integer")
                if isinstance(key.value, str) and key.value.startswith("__"):
                    raise self.refuse(top, f"field name {key.value!r} is not allowed")
                if isinstance(key.value, str) and text_problem(key.value) is not None:
                    problem = text_problem(key.value)
                    raise self.refuse(top, f"a field name with {problem} never matches")
                path.append(key.value)
            node = node.value
        assert isinstance(node, ast.Name)
        path.reverse()
        root = node.id
        if root in SCALARS:
            if path:
                raise self.refuse(top, f"{root} is text and has no fields")
            return _scalar(root)
        if root in ROOTS:
            if not path:
                raise self.refuse(top, f"name a field of {root}, e.g. {root}.customer_id")
            return _lookup(root, tuple(path))
        raise self.refuse(
            top,
            f"unknown name {root!r}: fields are args.<name>, meta.<name>, kind, queue and tenant",
        )

    def literal(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, float) and not math.isfinite(value):
                raise self.refuse(node, "numbers must be finite")
            if isinstance(value, str) and text_problem(value) is not None:
                raise self.refuse(node, f"a string with {text_problem(value)} never matches")
            if value is None or isinstance(value, bool | int | float | str):
                return value
            raise self.refuse(node, f"{type(value).__name__} values are not JSON")
        if isinstance(node, ast.Name):
            if node.id in _LITERAL_NAMES:
                return _LITERAL_NAMES[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            inner = node.operand
            if isinstance(inner, ast.Constant) and type(inner.value) in (int, float):
                number = self.literal(inner)
                return -number if isinstance(node.op, ast.USub) else number
            raise self.refuse(node, "a sign applies to a number only")
        if isinstance(node, ast.List | ast.Tuple):
            return [self.literal(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            out: dict[str, Any] = {}
            for key, item in zip(node.keys, node.values, strict=True):
                if key is None or not isinstance(key, ast.Constant):
                    raise self.refuse(node, "object keys must be strings")
                if not isinstance(key.value, str):
                    raise self.refuse(node, "object keys must be strings")
                if text_problem(key.value) is not None:
                    raise self.refuse(node, f"a key with {text_problem(key.value)} never matches")
                out[key.value] = self.literal(item)
            return out
        raise self.refuse(node, self._what(node))

    def _what(self, node: ast.AST) -> str:
        if isinstance(node, ast.Call):
            return f"function calls are not allowed; compare a field to a value ({_EXAMPLE})"
        if isinstance(node, ast.Lambda):
            return "lambda is not allowed"
        if isinstance(node, ast.BinOp | ast.UnaryOp):
            return "arithmetic is not allowed; compare a field to a literal value"
        if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            return "comprehensions are not allowed"
        if isinstance(node, ast.IfExp):
            return "conditional expressions are not allowed; use and/or"
        if isinstance(node, ast.NamedExpr):
            return "assignment is not allowed"
        if isinstance(node, ast.JoinedStr):
            return "f-strings are not allowed; write a plain string"
        if isinstance(node, ast.Set):
            return "sets are not allowed; write a list [ ... ]"
        if isinstance(node, ast.Attribute | ast.Subscript):
            return "only fields of args and meta can be looked into"
        return f"{type(node).__name__} is not allowed here"


def _scalar(name: str) -> Value:
    if name == "kind":
        return lambda s: s.kind
    if name == "queue":
        return lambda s: s.queue
    return lambda s: s.tenant


def _lookup(root: str, path: tuple[str | int, ...]) -> Value:
    def get(s: Subject) -> Any:
        value: Any = s.args if root == "args" else s.meta
        for step in path:
            if isinstance(step, str) and isinstance(value, Mapping):
                value = value.get(step, MISSING)
            elif isinstance(step, int) and isinstance(value, list):
                if not -len(value) <= step < len(value):
                    return MISSING
                value = value[step]
            else:
                return MISSING
            if value is MISSING:
                return MISSING
        return value

    return get


# --- comparison semantics ---------------------------------------------------------------------
def _plain(value: Any) -> Any:
    return None if value is MISSING else value


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0, lists and objects compare deeply."""
    a, b = _plain(a), _plain(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | dict) or isinstance(b, list | dict):
        return False
    return bool(a == b)


def _orderable(a: Any, b: Any) -> bool:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    return numbers or (isinstance(a, str) and isinstance(b, str))


def _contains(item: Any, container: Any) -> bool:
    container = _plain(container)
    if isinstance(container, list):
        return any(_same(item, x) for x in container)
    item = _plain(item)
    if isinstance(container, str) and isinstance(item, str):
        return item in container
    if isinstance(container, dict) and isinstance(item, str):
        return item in container
    return False


_OPERATORS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: _same,
    ast.NotEq: lambda a, b: not _same(a, b),
    ast.Lt: lambda a, b: _orderable(a, b) and a < b,
    ast.LtE: lambda a, b: _orderable(a, b) and a <= b,
    ast.Gt: lambda a, b: _orderable(a, b) and a > b,
    ast.GtE: lambda a, b: _orderable(a, b) and a >= b,
    ast.In: _contains,
    ast.NotIn: lambda a, b: not _contains(a, b),
}


def _pair(compare: Callable[[Any, Any], bool], left: Value, right: Value) -> Test:
    return lambda s: compare(left(s), right(s))


# --- sets of rules ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rule:
    """A blackhole rule: jobs of `kind` (any kind when None) that meet `where` are shed."""

    id: int
    kind: str | None
    where: str
    reason: str
    created_at: float
    expires_at: float | None


class RuleSet:
    """Rules compiled once, matched against many jobs; the first matching rule wins (lowest
    id). A stored rule that no longer parses is skipped (and reported in `broken`)."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = sorted(rules, key=lambda r: r.id)
        self.broken: list[tuple[Rule, str]] = []
        self._by_kind: dict[str | None, list[tuple[Rule, Condition]]] = {}
        for rule in self.rules:
            try:
                condition = parse_where(rule.where)
            except InvalidRuleError as exc:
                self.broken.append((rule, str(exc)))
                continue
            self._by_kind.setdefault(rule.kind, []).append((rule, condition))

    def __bool__(self) -> bool:
        return bool(self._by_kind)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_kind.values())

    def may_match(self, kind: str) -> bool:
        """Whether any rule could match a job of this kind (a cheap test before `match`)."""
        return kind in self._by_kind or None in self._by_kind

    def match(self, subject: Subject, now: float) -> Rule | None:
        """The first live rule that `subject` meets, or None."""
        if not self._by_kind:
            return None
        found: Rule | None = None
        for group in (self._by_kind.get(subject.kind, ()), self._by_kind.get(None, ())):
            for rule, condition in group:
                if rule.expires_at is not None and rule.expires_at <= now:
                    continue
                if found is not None and found.id < rule.id:
                    break
                if condition.matches(subject):
                    found = rule
                    break
        return found


def shed_reason(rule: Rule) -> str:
    """The error text recorded on a job that a rule shed."""
    why = f": {rule.reason}" if rule.reason else ""
    return f"shed by blackhole rule {rule.id}{why}"


def describe(rules: Sequence[Rule]) -> list[str]:
    """One line per rule, for logs."""
    return [f"#{r.id} kind={r.kind or '*'} where={r.where or 'true'}" for r in rules]
