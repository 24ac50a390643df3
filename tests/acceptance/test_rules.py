"""`offload rules add / list / remove` through the real CLI, and what the rules do to jobs:
matching jobs go `shed` (listed with `jobs list --state shed`, counted by `stats`)."""

from __future__ import annotations

from ._helpers import CLI, job


def test_add_list_and_remove_a_rule(cli: CLI, fresh_url: str) -> None:
    added = cli(
        "rules",
        "add",
        "--kind",
        "ImportJob",
        "--where",
        "args.customer_id == 123",
        "--expires",
        "1h",
        "--reason",
        "customer 123 floods the importer",
        "--url",
        fresh_url,
        "--json",
    ).json()
    assert added["kind"] == "ImportJob"
    assert added["where"] == "args.customer_id == 123"
    assert added["reason"] == "customer 123 floods the importer"
    assert added["expires_at"] is not None

    listed = cli("rules", "list", "--url", fresh_url, "--json").json()
    assert listed == [added]
    table = cli("rules", "list", "--url", fresh_url).out
    header, row = table.splitlines()
    assert header.split() == ["ID", "KIND", "WHERE", "CREATED", "EXPIRES", "REASON"]
    assert "ImportJob" in row and "args.customer_id == 123" in row

    text = cli("rules", "add", "--where", 'tenant == "acme"', "--url", fresh_url).out
    assert text.startswith("added rule ") and "kind any" in text

    removed = cli("rules", "remove", str(added["id"]), "--url", fresh_url)
    assert removed.out.strip() == f"removed rule {added['id']}"
    assert [r["where"] for r in cli("rules", "list", "--url", fresh_url, "--json").json()] == [
        'tenant == "acme"'
    ]
    again = cli("rules", "remove", str(added["id"]), "--url", fresh_url, code=1)
    assert f"there is no rule {added['id']}" in again.err


def test_a_bad_where_is_a_usage_error_that_names_the_problem(cli: CLI, fresh_url: str) -> None:
    for where, problem in [
        ("args.customer_id ==", "is not valid"),
        ("args.__class__ == 1", "field name '__class__' is not allowed"),
        ("__import__('os').system('id') == 0", "function calls are not allowed"),
        ("customer_id == 123", "unknown name 'customer_id'"),
    ]:
        result = cli("rules", "add", "--kind", "X", "--where", where, "--url", fresh_url, code=2)
        assert result.err.startswith("Error: ")
        assert problem in result.err, result
        assert "Traceback" not in result.err
    assert cli("rules", "list", "--url", fresh_url, "--json").json() == []


def test_other_usage_errors(cli: CLI, fresh_url: str) -> None:
    result = cli("rules", "add", "--url", fresh_url, code=2)
    assert "--kind, --where or both" in result.err
    result = cli("rules", "add", "--kind", "X", "--expires", "soon", "--url", fresh_url, code=2)
    assert "is not a duration" in result.err


def test_matching_jobs_are_shed_listed_and_counted(cli: CLI, fresh_url: str) -> None:
    rule = cli(
        "rules", "add", "--kind", "add", "--where", "args.a == 1", "--url", fresh_url, "--json"
    ).json()

    shed_id = int(cli("enqueue", "cliapp:app", "add", "a=1", "b=2", "--url", fresh_url).out)
    kept_id = int(cli("enqueue", "cliapp:app", "add", "a=2", "b=2", "--url", fresh_url).out)

    shed = job(fresh_url, shed_id)
    assert shed.state == "shed"
    assert shed.errors[-1]["rule"] == rule["id"]
    assert job(fresh_url, kept_id).state == "available"

    listed = cli("jobs", "list", "--state", "shed", "--url", fresh_url, "--json").json()
    assert [j["id"] for j in listed] == [shed_id]
    shown = cli("jobs", "show", str(shed_id), "--url", fresh_url).out
    assert f"shed by blackhole rule {rule['id']}" in shown

    snap = cli("stats", "--url", fresh_url, "--json").json()
    assert snap["counters"]["shed"] == 1
    assert snap["counters"]["refused"] == 0
    assert "shed 1" in cli("stats", "--url", fresh_url).out
