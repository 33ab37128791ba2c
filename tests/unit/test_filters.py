"""The filter language: validation, the Python evaluator, and SQL that agrees with it.

The property tests run every generated filter both ways on a real SQLite table. They run on
PostgreSQL too, with the session's `pg_url` (DATALOFT_TEST_PG_URL, or a throwaway server).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from dataloft.errors import BadRequest
from dataloft.kit.filters import (
    DuckColumn,
    Filter,
    from_query_params,
    matches,
    parse_filter,
    to_duckdb,
    to_sql,
)

# --- a real table ------------------------------------------------------------------------

_md = sa.MetaData()
records = sa.Table(
    "filter_test_records",
    _md,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("meta", sa.JSON().with_variant(JSONB(), "postgresql")),
    sa.Column("source", sa.String(100)),
    sa.Column("file_id", sa.String(40)),
    sa.Column("created_at", sa.BigInteger),
)
SYSTEM = {
    "source": records.c.source,
    "fileId": records.c.file_id,
    "createdAt": records.c.created_at,
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """One engine per backend for the whole module (in-memory SQLite; PostgreSQL if given)."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else "sqlite://"
    eng = sa.create_engine(url)
    _md.drop_all(eng)
    _md.create_all(eng)
    yield eng
    _md.drop_all(eng)
    eng.dispose()


Row = tuple[dict[str, Any] | None, dict[str, Any]]  # (meta, system values)


def _sql_ids(engine: sa.Engine, rows: list[Row], f: Filter | None) -> set[int]:
    with engine.begin() as conn:
        conn.execute(records.delete())
        if rows:
            conn.execute(
                records.insert(),
                [
                    {
                        "id": i,
                        "meta": meta,
                        "source": system["source"],
                        "file_id": system["fileId"],
                        "created_at": system["createdAt"],
                    }
                    for i, (meta, system) in enumerate(rows)
                ],
            )
        where = to_sql(f, records.c.meta, SYSTEM, engine.dialect.name)
        return set(conn.execute(sa.select(records.c.id).where(where)).scalars())


def _python_ids(rows: list[Row], f: Filter | None) -> set[int]:
    return {i for i, (meta, system) in enumerate(rows) if matches(f, meta or {}, system)}


NO_SYSTEM = {"source": None, "fileId": None, "createdAt": None}


@pytest.fixture
def check(engine: sa.Engine) -> Any:
    """check(f, meta, system) -> whether the row matches, asserting SQL agrees with Python."""

    def run(f: Filter | None, meta: dict[str, Any], system: dict[str, Any] | None = None) -> bool:
        row: Row = (meta, {**NO_SYSTEM, **(system or {})})
        expected = matches(f, meta, row[1])
        assert _sql_ids(engine, [row], f) == ({0} if expected else set())
        return expected

    return run


# --- strategies --------------------------------------------------------------------------

STRINGS = [
    "",
    "5",
    "5.0",
    "a",
    "B",
    "b",
    "true",
    "é",
    "Zz",
    "2024-01-01",
    "2024-01-01T10:00:00Z",
    "2023-12-31",
    "2024-02",
]
strings = st.sampled_from(STRINGS) | st.text(alphabet="aB5-:.é ", max_size=4)
numbers = st.integers(-6, 6) | st.sampled_from(
    [0.0, -0.0, 2.5, -1.5, 5.0, 0.1, 1e-7, 0.30000000000000004, 2**53 - 1, -(2.0**53 - 1)]
)
# A small shared pool, drawn most of the time, so that filters often split a batch of rows.
POOL = [None, True, False, 0, 5, 5.0, 2.5, "5", "a", "B", "é", "2024-01-01", "2024-01-01T10:00Z"]
pool = st.sampled_from(POOL)


def _mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`common` three times in four (one_of would flatten repeated branches into one)."""
    return st.integers(0, 3).flatmap(lambda i: rare if i == 0 else common)


scalars = _mostly(pool, st.none() | st.booleans() | numbers | strings)
# Stored values go beyond what a filter may name: any finite float, huge ints, arrays, objects.
stored = _mostly(
    scalars,
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers()
    | st.sampled_from([2**53, 2**53 + 1, 10**23, 1e23, 10**400, ["a", 5], [], {"x": 1}, {}]),
)
nested = st.fixed_dictionaries({}, optional={"x": stored, "0": stored})
META_KEYS = ["a", "b", "c", "source", "2024", "odd key [$]"]
meta_dicts = st.fixed_dictionaries(
    {}, optional={**{k: stored for k in META_KEYS}, "n": _mostly(nested, stored)}
)
metas = _mostly(meta_dicts, st.none())
systems = st.fixed_dictionaries(
    {
        "source": st.none() | st.sampled_from(["", "a", "b", "web", "2024-01-01"]),
        "fileId": st.none() | st.sampled_from(["file_1", "file_2"]),
        "createdAt": st.none() | st.integers(-3, 3) | st.just(1_700_000_000_000),
    }
)
rows = st.lists(st.tuples(metas, systems), min_size=3, max_size=10)

FIELDS = [
    "a",
    "b",
    "c",
    "n",
    "n.x",
    "n.0",
    "meta.a",
    "meta.source",
    "source",
    "fileId",
    "createdAt",
    "2024",
    "odd key [$]",
    "missing",
]
fields = st.sampled_from(FIELDS)
orderable = scalars.filter(lambda v: isinstance(v, str | int | float) and not isinstance(v, bool))


def _operator(op: str) -> st.SearchStrategy[Any]:
    if op in ("$eq", "$ne"):
        return scalars
    if op in ("$in", "$nin"):
        return st.lists(scalars, max_size=4)
    if op == "$exists":
        return st.booleans()
    return orderable


operator_objects = st.lists(
    st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"]).flatmap(
        lambda op: st.tuples(st.just(op), _operator(op))
    ),
    min_size=1,
    max_size=2,
).map(dict)
leaves = st.dictionaries(fields, scalars | operator_objects, min_size=1, max_size=2)
filters = st.recursive(
    leaves,
    lambda sub: st.one_of(
        st.builds(lambda fs: {"$and": fs}, st.lists(sub, min_size=1, max_size=3)),
        st.builds(lambda fs: {"$or": fs}, st.lists(sub, min_size=1, max_size=3)),
        st.builds(lambda f: {"$not": f}, sub),
        st.builds(lambda a, b: {**a, **b}, sub, sub),
    ),
    max_leaves=8,
)
QS_TEXTS = ["5", "5.0", "-1.5", "true", "false", "a", "", "2024-01-01", "1e400", "05"]
QS_STORED = [None, True, False, 5, 5.0, -1.5, "5", "5.0", "true", "a", "", "05", 0]
qs_value = _mostly(st.sampled_from(QS_STORED), stored)
qs_rows = st.lists(
    st.tuples(
        st.fixed_dictionaries(
            {},
            optional={
                "a": qs_value,
                "b": qs_value,
                "source": qs_value,
                "n": st.fixed_dictionaries({"x": qs_value}),
            },
        ),
        systems,
    ),
    min_size=3,
    max_size=10,
)
query_params = st.lists(
    st.tuples(
        st.sampled_from(["meta.a", "meta[a]", "meta.b", "meta[n][x]", "meta[source]", "take"]),
        st.sampled_from(QS_TEXTS),
    ),
    min_size=1,
    max_size=2,
)
# Ordering on its own: mixed case and non-ASCII strings, where byte order (Python, SQLite,
# COLLATE "C") and a locale collation disagree, plus numbers and other types.
ORDERED = ["a", "B", "b", "Zz", "é", "", "2024-01-01", "2024-01-01T10:00Z", 0, -1.5, 2.5, 5]
ordered = st.sampled_from(ORDERED)
ordering_rows = st.lists(
    st.tuples(
        st.fixed_dictionaries({}, optional={"a": _mostly(ordered, stored)}),
        st.fixed_dictionaries(
            {"source": st.none() | st.sampled_from([v for v in ORDERED if isinstance(v, str)])}
        ).map(lambda d: {**NO_SYSTEM, **d}),
    ),
    min_size=3,
    max_size=10,
)
ordering_filters = st.recursive(
    st.dictionaries(
        st.sampled_from(["a", "source"]),
        st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), ordered, min_size=1),
        min_size=1,
    ),
    lambda sub: (
        st.builds(lambda f: {"$not": f}, sub) | st.builds(lambda a, b: {"$or": [a, b]}, sub, sub)
    ),
    max_leaves=3,
)
SETTINGS = settings(max_examples=200, deadline=None)


# --- property tests ----------------------------------------------------------------------


@SETTINGS
@given(rows=rows, raw=filters)
def test_sql_agrees_with_python(engine: sa.Engine, rows: list[Row], raw: Any) -> None:
    f = parse_filter(raw)
    assert _sql_ids(engine, rows, f) == _python_ids(rows, f)


@SETTINGS
@given(rows=ordering_rows, raw=ordering_filters)
def test_sql_ordering_agrees_with_python(engine: sa.Engine, rows: list[Row], raw: Any) -> None:
    f = parse_filter(raw)
    assert _sql_ids(engine, rows, f) == _python_ids(rows, f)


@SETTINGS
@given(rows=qs_rows, params=query_params)
def test_sql_query_params_agree_with_python(
    engine: sa.Engine, rows: list[Row], params: Any
) -> None:
    f = from_query_params(params)
    assert _sql_ids(engine, rows, f) == _python_ids(rows, f)


# --- semantics by example ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "meta", "expected"),
    [
        ({"a": 5}, {"a": 5.0}, True),
        ({"a": 5}, {"a": "5"}, False),
        ({"a": 1}, {"a": True}, False),
        ({"a": True}, {"a": True}, True),
        ({"a": None}, {}, True),
        ({"a": None}, {"a": None}, True),
        ({"a": None}, {"a": 0}, False),
        ({"a": {"$ne": 5}}, {}, True),
        ({"a": {"$ne": None}}, {"a": None}, False),
        ({"a": {"$nin": [1, 2]}}, {"b": 1}, True),
        ({"a": {"$in": []}}, {"a": 1}, False),
        ({"a": {"$gt": 3}}, {"a": "9"}, False),
        ({"a": {"$gt": 3}}, {"a": True}, False),
        ({"a": {"$lt": 3}}, {}, False),
        ({"d": {"$gte": "2024-01-01"}}, {"d": "2024-03-05T10:00:00Z"}, True),
        ({"d": {"$gte": "2024-01-01"}}, {"d": "2023-12-31"}, False),
        ({"a": {"$exists": True}}, {"a": None}, True),
        ({"a": {"$exists": False}}, {"a": None}, False),
        ({"a": {"$exists": False}}, {}, True),
        ({"a": {"$gt": 1, "$lt": 3}}, {"a": 2}, True),
        ({"a": {"$gt": 1, "$lt": 3}}, {"a": 3}, False),
        ({"n.x": 1}, {"n": {"x": 1}}, True),
        ({"n.x": 1}, {"n": [1]}, False),
        ({"meta.a": 1}, {"a": 1}, True),
        ({"a": 1}, {"a": [1]}, False),
        ({"$or": [{"a": 1}, {"b": 2}]}, {"b": 2}, True),
        ({"$not": {"a": 1}}, {"a": 1}, False),
        ({"$and": [{}]}, {}, True),
    ],
)
def test_semantics(check: Any, raw: Any, meta: dict[str, Any], expected: bool) -> None:
    assert check(parse_filter(raw), meta) is expected


def test_system_fields_take_priority_over_meta(check: Any) -> None:
    f = parse_filter({"source": "web"})
    assert check(f, {"source": "api"}, {"source": "web"})
    assert not check(f, {"source": "web"}, {"source": "api"})
    assert check(parse_filter({"meta.source": "api"}), {"source": "api"}, {"source": "web"})
    assert not check(parse_filter({"createdAt": {"$gte": "2024"}}), {}, {"createdAt": 5})
    assert check(parse_filter({"createdAt": {"$gte": 5}}), {}, {"createdAt": 5})
    assert check(parse_filter({"createdAt": {"$exists": False}}), {}, {"createdAt": None})
    assert check(parse_filter({"fileId": None}), {"fileId": "f"}, {"fileId": None})


def test_no_filter_means_everything(check: Any) -> None:
    assert parse_filter(None) is None and parse_filter({}) is None
    assert check(None, {})


def test_filter_is_immutable() -> None:
    f = parse_filter({"a": 1})
    assert f is not None
    with pytest.raises(AttributeError):
        f.op = "$or"  # type: ignore[misc]
    assert hash(f) == hash(parse_filter({"a": 1}))


# --- validation --------------------------------------------------------------------------


def _deep(n: int) -> dict[str, Any]:
    f: dict[str, Any] = {"a": 1}
    for _ in range(n):
        f = {"$not": f}
    return f


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "filter: expected an object"),
        ("a=1", "filter: expected an object"),
        ({"a": {"$regex": "x"}}, "filter.a.$regex: unknown operator '$regex'"),
        ({"$nor": []}, "filter.$nor: unknown operator '$nor'"),
        ({"a": {"$in": 5}}, "filter.a.$in: expected a list"),
        ({"a": {"$in": [[1]]}}, "filter.a.$in[0]: expected a string, number, boolean or null"),
        ({"amount": {"$gte": [1]}}, "filter.amount.$gte: expected a number or a string"),
        ({"amount": {"$gte": {}}}, "filter.amount.$gte: expected a number or a string"),
        ({"amount": {"$gt": True}}, "filter.amount.$gt: expected a number or a string"),
        ({"amount": {"$lt": None}}, "filter.amount.$lt: expected a number or a string"),
        ({"a": {"$exists": 1}}, "filter.a.$exists: expected true or false"),
        ({"a": {}}, "filter.a: expected at least one operator"),
        ({"a": [1, 2]}, "filter.a: expected a string, number, boolean or null"),
        ({"": 1}, "filter.: empty field name"),
        ({"a..b": 1}, "empty path segment"),
        ({"meta.": 1}, "empty path segment"),
        ({'a"b': 1}, "printable ASCII"),
        ({"größe": 1}, "printable ASCII"),
        ({"x" * 201: 1}, "longer than 200"),
        ({"$and": {}}, "filter.$and: expected a non-empty list of filters"),
        ({"$or": []}, "filter.$or: expected a non-empty list of filters"),
        ({"$and": [{"a": 1}, 5]}, "filter.$and[1]: expected an object"),
        ({"$or": [{"a": {"$bad": 1}}]}, "filter.$or[0].a.$bad: unknown operator"),
        ({"$not": [{"a": 1}]}, "filter.$not: expected an object"),
        ({"a": float("nan")}, "numbers must be finite"),
        ({"a": 2**53}, "within +-9007199254740991"),
        ({"a": {"$eq": "x\x00"}}, "NUL"),
        ({"a": {"$in": list(range(1001))}}, "more than 1000 values"),
        ({f"k{i}": i for i in range(257)}, "more than 256 conditions"),
        (_deep(16), "nested deeper than 16 levels"),
        ({1: 2}, "keys must be strings"),
        ({"a": {"$qs": "5"}}, "unknown operator '$qs'"),
    ],
)
def test_parse_errors(raw: Any, message: str) -> None:
    with pytest.raises(BadRequest) as err:
        parse_filter(raw)
    assert message in err.value.message
    assert err.value.status == 400


def test_limits_are_inclusive() -> None:
    assert parse_filter(_deep(15)) is not None
    assert parse_filter({f"k{i}": i for i in range(256)}) is not None
    assert parse_filter({"a": {"$in": list(range(1000))}}) is not None
    assert parse_filter({"a": -(2**53 - 1), "b": "größe"}) is not None


# --- query strings -----------------------------------------------------------------------


def test_query_params_both_notations() -> None:
    seed = from_query_params({"meta[kind]": "faq", "take": "10"})
    sdk = from_query_params([("meta.kind", "faq"), ("cursor", "x")])
    assert seed == sdk
    assert matches(seed, {"kind": "faq"})
    assert not matches(seed, {"kind": "faqs"})
    assert not matches(seed, {})


def test_query_params_are_lenient(check: Any) -> None:
    def ok(text: str, stored: Any) -> bool:
        return check(from_query_params({"meta.v": text}), {"v": stored})

    assert ok("5", 5) and ok("5", 5.0) and ok("5", "5") and ok("5.0", 5)
    assert ok("-1.5", -1.5) and ok("1e2", 100)
    assert not ok("5", "5.0") and not ok("05", 5) and not ok("5", True)
    assert ok("true", True) and ok("false", False) and ok("true", "true")
    assert not ok("true", 1) and not ok("True", True)
    assert not ok("", None) and ok("", "")


def test_query_params_nesting_repeats_and_system_names() -> None:
    assert matches(from_query_params({"meta[a][b]": "1"}), {"a": {"b": 1}})
    assert matches(from_query_params({"meta.a.b": "1"}), {"a": {"b": 1}})
    either = from_query_params([("meta.k", "x"), ("meta.k", "y")])
    assert matches(either, {"k": "y"}) and not matches(either, {"k": "z"})
    both = from_query_params([("meta.k", "x"), ("meta.j", "y")])
    assert matches(both, {"k": "x", "j": "y"}) and not matches(both, {"k": "x"})
    # meta.* always addresses meta, even where a system field has the same name.
    assert matches(from_query_params({"meta.source": "a"}), {"source": "a"}, {"source": "b"})
    assert from_query_params({"take": "5", "metadata": "x"}) is None
    assert from_query_params([]) is None


def test_query_params_errors() -> None:
    with pytest.raises(BadRequest, match="query.meta.: field 'meta.' has an empty path segment"):
        from_query_params({"meta.": "x"})
    with pytest.raises(BadRequest, match=r"query.meta\[a\]\[\]: .* empty path segment"):
        from_query_params({"meta[a][]": "x"})
    with pytest.raises(BadRequest, match=r"query.meta\[a\]: strings must not contain NUL"):
        from_query_params({"meta[a]": "\x00"})


# --- SQL shape ---------------------------------------------------------------------------

EVERY_OPERATOR = [
    {"a": "x"},
    {"a": 5},
    {"a": 2.5},
    {"a": True},
    {"a": None},
    {"a.b.c": {"$eq": "x", "$ne": 1}},
    {"a": {"$gt": 1, "$gte": "2024", "$lt": 1.5, "$lte": "z"}},
    {"a": {"$in": ["x", 1, 2.5, True, False, None], "$nin": []}},
    {"a": {"$exists": True}},
    {"a": {"$exists": False}},
    {"$and": [{"a": 1}], "$or": [{"b": 1}, {"c": 1}], "$not": {"d": 1}},
    {"source": "web", "fileId": {"$in": ["f", 1, None]}, "createdAt": {"$gte": 5, "$lt": "x"}},
    {"source": {"$gt": "a", "$exists": False}, "createdAt": {"$ne": True}},
]


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2", "asyncpg"])
@pytest.mark.parametrize("raw", EVERY_OPERATOR)
def test_postgresql_sql_compiles(raw: dict[str, Any], driver: str) -> None:
    dialect = sa.dialects.registry.load(f"postgresql.{driver}")()
    sql = str(
        to_sql(parse_filter(raw), records.c.meta, SYSTEM, "postgresql").compile(dialect=dialect)
    )
    assert "json_extract" not in sql and "json_type(" not in sql
    if "a" in raw or "a.b.c" in raw:
        assert "filter_test_records.meta -> " in sql


def test_postgresql_query_params_compile() -> None:
    f = from_query_params({"meta[a]": "5", "meta.b": "true"})
    sql = str(to_sql(f, records.c.meta, SYSTEM, "postgresql").compile(dialect=postgresql.dialect()))
    assert "NUMERIC" in sql and "jsonb_typeof" in sql


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_values_are_bound_not_inlined(dialect: str) -> None:
    f = parse_filter({"a": "evil') OR 1=1 --", "odd key": {"$gt": "sneaky"}})
    sql = str(
        to_sql(f, records.c.meta, SYSTEM, dialect).compile(
            dialect=postgresql.dialect() if dialect == "postgresql" else sqlite.dialect()
        )
    )
    assert "evil" not in sql and "sneaky" not in sql and "odd key" not in sql


def test_none_compiles_to_true_and_bad_dialect_fails() -> None:
    assert str(to_sql(None, records.c.meta, SYSTEM, "sqlite").compile()) == "true"
    with pytest.raises(ValueError):
        to_sql(parse_filter({"a": 1}), records.c.meta, SYSTEM, "mysql")


# --- DuckDB: table rows (typed columns over shared meta) ---------------------------------
# A synced table row is the record meta {**shared, **<non-null cells>}; the "duckdb" target
# must select exactly the rows `matches` selects on that meta. One column per kind.

DUCK_SHARED = {"fileName": "f.csv", "source": "web", "b": "shared", "2024": 5}
DUCK_COLUMNS = {
    "a": DuckColumn('"a"', "number"),
    "b": DuckColumn('"b"', "string"),
    "c": DuckColumn('"c"', "bool"),
    "n": DuckColumn('"n"', "json"),
    "odd key [$]": DuckColumn('"odd key [$]"', "string"),
    "row": DuckColumn('"__row"', "number"),
}
duck_numbers = numbers | st.integers(-(2**53), 2**53) | st.floats(
    allow_nan=False, allow_infinity=False)
duck_nested_values = _mostly(scalars, duck_numbers | st.sampled_from([["a", 5], [], {"x": 1}]))
duck_json = st.fixed_dictionaries({}, optional={"x": duck_nested_values,
                                                "0": duck_nested_values}) | st.sampled_from(
    [["a", 5], []])
duck_rows = st.lists(
    st.fixed_dictionaries({}, optional={
        "a": _mostly(st.sampled_from([0, 5, 5.0, 2.5]), duck_numbers),
        "b": _mostly(st.sampled_from(["5", "a", "B", "é", "2024-01-01"]), strings),
        "c": st.booleans(),
        "n": duck_json,
        "odd key [$]": strings,
    }),
    min_size=1, max_size=10,
)


@pytest.fixture(scope="module")
def duck() -> Iterator[Any]:
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    yield con
    con.close()


def _duck_ids(con: Any, rows: list[dict[str, Any]], f: Filter | None) -> set[int]:
    con.execute('CREATE OR REPLACE TABLE t (a DOUBLE, b VARCHAR, c BOOLEAN, n VARCHAR, '
                '"odd key [$]" VARCHAR, "__row" BIGINT)')
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", [
        [r.get("a"), r.get("b"), r.get("c"),
         None if "n" not in r else json.dumps(r["n"]), r.get("odd key [$]"), i]
        for i, r in enumerate(rows)])
    where = to_duckdb(f, DUCK_COLUMNS, DUCK_SHARED)
    return {i for (i,) in con.execute(f'SELECT "__row" FROM t WHERE {where}').fetchall()}


def _duck_oracle(rows: list[dict[str, Any]], f: Filter | None) -> set[int]:
    return {i for i, r in enumerate(rows) if matches(f, {**DUCK_SHARED, **r, "row": i})}


@SETTINGS
@given(rows=duck_rows, raw=filters)
def test_duckdb_agrees_with_python(duck: Any, rows: list[dict[str, Any]], raw: Any) -> None:
    f = parse_filter(raw)
    assert _duck_ids(duck, rows, f) == _duck_oracle(rows, f)


@SETTINGS
@given(rows=duck_rows, raw=ordering_filters | st.sampled_from(
    [{"row": {"$gte": 2}}, {"b": "shared"}, {"b": None}, {"n.x": {"$exists": True}},
     {"fileName": "f.csv"}, {"meta.2024": {"$lt": 6}}]))
def test_duckdb_ordering_and_shared_meta_agree_with_python(
    duck: Any, rows: list[dict[str, Any]], raw: Any
) -> None:
    f = parse_filter(raw)
    assert _duck_ids(duck, rows, f) == _duck_oracle(rows, f)


@SETTINGS
@given(rows=duck_rows, params=query_params)
def test_duckdb_query_params_agree_with_python(
    duck: Any, rows: list[dict[str, Any]], params: Any
) -> None:
    f = from_query_params(params)
    assert _duck_ids(duck, rows, f) == _duck_oracle(rows, f)


def test_duckdb_literals_are_quoted() -> None:
    f = parse_filter({"b": "x' OR 1=1 --", "odd key [$]": {"$gt": "'"}})
    where = to_duckdb(f, DUCK_COLUMNS, {})
    assert "'x'' OR 1=1 --'" in where and "''''" in where
