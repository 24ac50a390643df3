"""The `where` language of blackhole rules: what it accepts, what it means, what it refuses."""

from __future__ import annotations

from typing import Any

import pytest

from offload import InvalidRuleError
from offload.dispatch._rules import MAX_LENGTH, Rule, RuleSet, Subject, parse_where


def subject(
    args: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    kind: str = "ImportJob",
    queue: str = "default",
    tenant: str | None = None,
) -> Subject:
    return Subject(kind, queue, tenant, args or {}, meta or {})


def matches(where: str, **fields: Any) -> bool:
    return parse_where(where).matches(subject(**fields))


# --- meaning ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("where", "args", "expected"),
    [
        ("args.customer_id == 123", {"customer_id": 123}, True),
        ("args.customer_id == 123", {"customer_id": 124}, False),
        ("args.customer_id == 123", {"customer_id": 123.0}, True),
        ("args.customer_id == 123", {"customer_id": "123"}, False),
        ("args.customer_id == 123", {}, False),
        ("args.customer_id != 123", {}, True),
        ("args.customer_id == null", {}, True),
        ("args.customer_id == None", {"customer_id": None}, True),
        ("args.flag == true", {"flag": True}, True),
        ("args.flag == true", {"flag": 1}, False),
        ("args.flag == True", {"flag": True}, True),
        ("args.n > 10", {"n": 11}, True),
        ("args.n >= 10", {"n": 10}, True),
        ("args.n < 10", {"n": 10}, False),
        ("args.n <= -1.5", {"n": -2}, True),
        ("args.n > 10", {"n": "11"}, False),
        ("args.n < 10", {"n": None}, False),
        ("args.name < 'm'", {"name": "ada"}, True),
        ("1 < args.n < 5", {"n": 3}, True),
        ("1 < args.n < 5", {"n": 5}, False),
        ("args.source in ['ftp', 's3']", {"source": "s3"}, True),
        ("args.source in ['ftp', 's3']", {"source": "http"}, False),
        ("args.source not in ['ftp', 's3']", {"source": "http"}, True),
        ("'vip' in args.tags", {"tags": ["a", "vip"]}, True),
        ("'vip' in args.tags", {"tags": "a vip b"}, True),
        ("'vip' in args.tags", {}, False),
        ("args.user.id == 7", {"user": {"id": 7}}, True),
        ("args.user.id == 7", {"user": 7}, False),
        ('args["file-name"] == "x.csv"', {"file-name": "x.csv"}, True),
        ("args.items[0] == 'a'", {"items": ["a", "b"]}, True),
        ("args.items[-1] == 'b'", {"items": ["a", "b"]}, True),
        ("args.items[5] == null", {"items": ["a"]}, True),
        ("args.point == [1, 2]", {"point": [1, 2]}, True),
        ("args.point == [1, true]", {"point": [1, 1]}, False),
        ('args.opts == {"a": 1}', {"opts": {"a": 1}}, True),
        ("args.a == 1 and args.b == 2", {"a": 1, "b": 2}, True),
        ("args.a == 1 and args.b == 2", {"a": 1, "b": 3}, False),
        ("args.a == 1 or args.b == 2", {"a": 0, "b": 2}, True),
        ("not args.a == 1", {"a": 2}, True),
        ("not (args.a == 1 or args.a == 2)", {"a": 2}, False),
        ("args.a == args.b", {"a": 3, "b": 3}, True),
    ],
)
def test_meaning(where: str, args: dict[str, Any], expected: bool) -> None:
    assert matches(where, args=args) is expected


def test_kind_queue_tenant_and_meta() -> None:
    s = subject(meta={"region": "eu"}, kind="ImportJob", queue="imports", tenant="acme")
    assert parse_where('kind == "ImportJob" and queue == "imports"').matches(s)
    assert parse_where('tenant == "acme"').matches(s)
    assert parse_where('meta.region == "eu"').matches(s)
    assert not parse_where("tenant == null").matches(s)
    assert parse_where("tenant == null").matches(subject())


def test_blank_matches_everything() -> None:
    assert parse_where(None).matches(subject())
    assert parse_where("  ").matches(subject())


# --- refusals -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("where", "problem"),
    [
        ("args.x ==", "not valid"),
        ("args.x = 1", "not valid"),
        ("args.__class__ == 1", "'__class__' is not allowed"),
        ("args.x.__class__.__bases__ == 1", "is not allowed"),
        ("args['__dict__'] == 1", "'__dict__' is not allowed"),
        ("().__class__.__bases__[0].__subclasses__() == 1", "not allowed"),
        ("__import__('os').system('true') == 0", "function calls are not allowed"),
        ("len(args.items) > 3", "function calls are not allowed"),
        ("args.x.lower() == 'a'", "function calls are not allowed"),
        ("(lambda: 1)() == 1", "not allowed"),
        ("lambda: True", "lambda is not allowed"),
        ("args.x + 1 == 2", "arithmetic is not allowed"),
        ("args.x == 1 if True else False", "conditional expressions"),
        ("[x for x in args.items] == []", "comprehensions"),
        ("(y := 1) == 1", "assignment"),
        ("args.x == f'{1}'", "f-strings"),
        ("args.x == {1, 2}", "sets are not allowed"),
        ("args.x is None", "'is' is not allowed"),
        ("args.x", "compare it"),
        ("true", "compare it"),
        ("os.environ == 1", "unknown name 'os'"),
        ("args == 1", "name a field of args"),
        ("kind.name == 1", "kind is text and has no fields"),
        ("args[args.x] == 1", "must be a string or an integer"),
        ("args.x == b'bytes'", "not JSON"),
        ("args.x == 1j", "not JSON"),
        ("args.x == -'a'", "a sign applies to a number only"),
        ("args.x == 1e999", "finite"),
        ("args.x == ...", "not JSON"),
        ("args.x == 1; import os", "not valid"),
        ("args.x == {**args}", "object keys must be strings"),
        ("'a'.join([]) == ''", "function calls are not allowed"),
        ("[1][0] == 1", "only fields of args and meta"),
    ],
)
def test_refused(where: str, problem: str) -> None:
    with pytest.raises(InvalidRuleError) as caught:
        parse_where(where)
    assert problem in str(caught.value)


def test_huge_and_deeply_nested_input_is_refused_cleanly() -> None:
    with pytest.raises(InvalidRuleError, match="too long"):
        parse_where("args.x == 1 or " * 200 + "args.x == 1")
    with pytest.raises(InvalidRuleError, match="too (deeply nested|complex)|not valid"):
        parse_where("(" * 300 + "args.x == 1" + ")" * 300)
    with pytest.raises(InvalidRuleError, match="too complex"):
        parse_where("args.x in [" + ",".join(["1"] * 500) + "]")
    assert len("args.x == 1 or " * 200) > MAX_LENGTH
    with pytest.raises(InvalidRuleError, match="NUL"):
        parse_where("args.x == '\x00'")


def test_a_refusal_names_where_the_problem_is() -> None:
    with pytest.raises(InvalidRuleError) as caught:
        parse_where("args.a == 1 and foo(args.b)")
    message = str(caught.value)
    assert "foo(args.b)" in message and "column 17" in message


# --- sets of rules --------------------------------------------------------------------------
def rule(rule_id: int, kind: str | None, where: str, expires_at: float | None = None) -> Rule:
    return Rule(rule_id, kind, where, "", 0.0, expires_at)


def test_ruleset_matches_by_kind_and_lowest_id_first() -> None:
    rules = RuleSet(
        [
            rule(5, None, "args.x == 1"),
            rule(3, "ImportJob", "args.x == 1"),
            rule(4, "Other", "args.x == 1"),
        ]
    )
    hit = rules.match(subject(args={"x": 1}), now=0.0)
    assert hit is not None and hit.id == 3
    hit = rules.match(subject(args={"x": 1}, kind="Third"), now=0.0)
    assert hit is not None and hit.id == 5
    assert rules.match(subject(args={"x": 2}), now=0.0) is None


def test_ruleset_skips_expired_and_broken_rules() -> None:
    rules = RuleSet([rule(1, None, "args.x == 1", expires_at=10.0), rule(2, None, "nope(")])
    assert rules.match(subject(args={"x": 1}), now=5.0) is not None
    assert rules.match(subject(args={"x": 1}), now=10.0) is None
    assert [r.id for r, _ in rules.broken] == [2]


def test_an_empty_ruleset_is_falsy() -> None:
    assert not RuleSet([])
    assert RuleSet([rule(1, "k", "")])
