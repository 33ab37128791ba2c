"""The house rules no off-the-shelf linter checks, over the AST of `src/dataloft`.

    python scripts/house_rules.py            # all rules; exit 1 on a breach
    python scripts/house_rules.py imports    # the import graph between top-level parts

- two-way imports: at most MAX_TWO_WAY pairs of top-level parts (packages or modules right
  under src/dataloft) import each other; each allowed pair is named in ALLOWED_TWO_WAY with
  its reason in docs/decisions.md.
- repositories: SQL statements are built and run only in `repository.py` modules and the
  storage adapters (see SQL_HOMES); services hold the rules.
- sizes: no module over MAX_MODULE_LINES lines, no function over MAX_FUNCTION_LINES.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "dataloft"
MAX_TWO_WAY = 2
ALLOWED_TWO_WAY: frozenset[frozenset[str]] = frozenset()
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

# Where SQL may be written: repositories, and the code whose whole job is SQL over one
# engine or table (storage adapters, the job queue and its locks, the database kit, the
# filter and policy compilers, keyset pagination), and the migrations.
SQL_HOMES = ("*/repository.py", "storage/*", "storage/*/*", "jobs/queue.py", "jobs/locks.py",
             "kit/db.py", "kit/migrate.py", "kit/filters/*", "kit/policy.py",
             "kit/pagination.py", "migrations/*", "migrations/*/*", "models.py")
SQL_BUILDERS = frozenset({"select", "insert", "update", "delete", "text", "exists", "union",
                          "union_all", "literal_column", "table", "column", "aliased",
                          "with_for_update"})
SESSIONS = ("session", "s", "db")
SESSION_CALLS = frozenset({"execute", "scalars", "scalar", "get", "add", "add_all", "delete",
                           "merge", "refresh", "flush", "query", "get_one"})


def modules() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(ROOT.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def part_of(path: Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def imported(path: Path, tree: ast.Module) -> Iterator[str]:
    package = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield ".".join([*base, node.module or ""]).rstrip(".")
            else:
                yield node.module or ""


def import_graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path, tree in modules():
        src = part_of(path)
        for name in imported(path, tree):
            parts = name.split(".")
            if parts[0] == "dataloft" and len(parts) > 1 and parts[1] != src:
                edges[src].add(parts[1])
    return edges


def two_way(edges: dict[str, set[str]]) -> set[frozenset[str]]:
    return {frozenset((a, b)) for a, targets in edges.items() for b in targets
            if a in edges.get(b, set())}


def check_imports() -> list[str]:
    pairs = two_way(import_graph())
    problems = [f"two-way import {' <-> '.join(sorted(p))} (not in ALLOWED_TWO_WAY)"
                for p in sorted(pairs - ALLOWED_TWO_WAY, key=sorted)]
    if len(pairs) > MAX_TWO_WAY:
        problems.append(f"{len(pairs)} two-way imports (at most {MAX_TWO_WAY})")
    return problems


def is_sql_home(path: Path) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel.match(pattern) for pattern in SQL_HOMES)


def sql_sites(tree: ast.Module) -> Iterator[tuple[int, str]]:
    builders = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            builders |= {a.asname or a.name for a in node.names if a.name in SQL_BUILDERS}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        fn = node.func
        if isinstance(fn, ast.Name) and fn.id in builders:
            yield node.lineno, f"{fn.id}(...)"
        elif isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
            owner, name = fn.value.id, fn.attr
            if (owner in SESSIONS and name in SESSION_CALLS) or (
                    owner in ("sa", "sqlalchemy") and name in SQL_BUILDERS):
                yield node.lineno, f"{owner}.{name}(...)"


def check_repositories() -> list[str]:
    problems = []
    for path, tree in modules():
        if is_sql_home(path):
            continue
        for line, what in sql_sites(tree):
            problems.append(f"{path.relative_to(ROOT.parent)}:{line}: {what} outside a "
                            "repository")
    return problems


def check_sizes() -> list[str]:
    problems = []
    for path, tree in modules():
        rel = path.relative_to(ROOT.parent)
        if rel.parts[1] == "migrations":
            continue  # a migration is a frozen record of a schema step, not code that grows
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(f"{rel}: {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    problems.append(f"{rel}:{node.lineno}: {node.name}() has {length} lines "
                                    f"(at most {MAX_FUNCTION_LINES})")
    return problems


def main(argv: list[str]) -> int:
    if argv[1:2] == ["imports"]:
        edges = import_graph()
        for src in sorted(edges):
            print(f"{src} -> {', '.join(sorted(edges[src]))}")
        print("two-way:", sorted(sorted(p) for p in two_way(edges)) or "none")
        return 0
    problems = check_imports() + check_repositories() + check_sizes()
    for p in problems:
        print(p)
    print(f"house rules: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
