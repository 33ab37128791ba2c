"""The one filter language: a Mongo-style JSON filter over records and files.

A filter is a JSON object. ``{"field": value}`` is equality; ``{"field": {"$op": operand}}``
applies operators ($eq $ne $gt $gte $lt $lte $in $nin $exists); ``$and``/``$or`` take a non-empty
list of filters and ``$not`` one filter. Several keys in one object are ANDed.

Fields: a caller-given set of system fields (real columns such as ``source``) wins; any other
name is a key of the JSON ``meta`` column, with ``a.b`` descending into nested objects and
``meta.x`` addressing meta key ``x`` explicitly. Field segments are printable ASCII without
``"`` or ``\\`` (SQLite's JSON paths cannot address other keys reliably).

Semantics, identical in Python (``matches``), SQL (``to_sql``, SQLite and PostgreSQL) and
DuckDB over synced table snapshots (``to_duckdb``, typed columns over shared file meta):

* ``$eq``/``$in`` are type-strict: "5" != 5, true != 1, 5 == 5.0. ``null`` matches a missing
  key or an explicit JSON null. Arrays and objects never equal anything.
* ``$ne``/``$nin`` are the exact negation: they also match documents lacking the field.
* ``$gt``/``$gte``/``$lt``/``$lte`` take a number or a string; numbers compare only with numbers,
  strings only with strings by code point (so ISO dates order correctly); anything else,
  booleans included, does not match.
* ``$exists: true`` means the key is present, even when its value is null (as in Mongo;
  ``{"$ne": null}`` asks for present-and-not-null). A system field exists when not NULL.
* Number operands must lie within +-(2**53 - 1), where doubles and exact decimals agree.

Query strings (``from_query_params``) compile to an internal ``$qs`` condition: the text
matches an equal string, an equal number if it parses as one, or a boolean for true/false.
PostgreSQL needs ``meta`` to be JSONB.
"""

from dataloft.kit.filters.duckdb import (
    DUCK_KINDS,
    DuckColumn,
    duck_literal,
    duck_quote,
    to_duckdb,
)
from dataloft.kit.filters.parse import (
    MAX_DEPTH,
    MAX_FIELD,
    MAX_LIST,
    MAX_NODES,
    MAX_NUMBER,
    Filter,
    Scalar,
    from_query_params,
    parse_filter,
)
from dataloft.kit.filters.python import matches
from dataloft.kit.filters.sql import to_sql

__all__ = ["DUCK_KINDS", "MAX_DEPTH", "MAX_FIELD", "MAX_LIST", "MAX_NODES", "MAX_NUMBER",
           "DuckColumn", "Filter", "Scalar", "duck_literal", "duck_quote", "from_query_params",
           "matches", "parse_filter", "to_duckdb", "to_sql"]
