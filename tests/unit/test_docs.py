"""The docs stay honest: every route is in docs/api.md, every setting in configuration.md."""

from __future__ import annotations

import re
from pathlib import Path

from dataloft.app import create_app
from dataloft.config import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _normalise(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_every_route_is_documented_with_a_curl_example() -> None:
    heading = r"^### (GET|POST|PUT|DELETE|PATCH) (\S+)"
    documented = {(m, _normalise(p))
                  for m, p in re.findall(heading, (DOCS / "api.md").read_text(), re.M)}
    routes = {(method.upper(), _normalise(path))
              for path, ops in create_app().openapi()["paths"].items() for method in ops}
    assert routes, "the app exposes no routes?"
    missing = sorted(routes - documented)
    assert not missing, f"routes missing from docs/api.md: {missing}"
    stale = sorted(documented - routes)
    assert not stale, f"docs/api.md documents routes that do not exist: {stale}"
    text = (DOCS / "api.md").read_text()
    for method, path in re.findall(r"^### (GET|POST|PUT|DELETE|PATCH) (\S+)", text, re.M):
        section = text.split(f"### {method} {path}", 1)[1].split("\n### ", 1)[0]
        assert "curl" in section, f"{method} {path} has no curl example"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"DATALOFT_{name.upper()}" in text, f"DATALOFT_{name.upper()} is undocumented"


def test_readme_quick_start_is_two_commands() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make serve", "make test"]


def fence_problems(text: str) -> list[str]:
    """Fences that do not pair up: an opening fence inside a block (a closing fence with an
    info string), or a block still open at the end, which renders the rest as code."""
    problems: list[str] = []
    opened: int | None = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped.startswith("```"):
            continue
        if opened is None:
            opened = number
        elif stripped != "```":
            problems.append(f"line {number}: {stripped!r} opens a block inside the one "
                            f"opened at line {opened}")
            opened = number
        else:
            opened = None
    if opened is not None:
        problems.append(f"the block opened at line {opened} is never closed")
    return problems


def test_fence_checker_catches_an_unclosed_block() -> None:
    assert fence_problems("```sh\nls\n```\n") == []
    assert fence_problems("```sh\nls\n\n## Next\n```json\n{}\n```\n")
    assert fence_problems("```sh\nls\n")


def test_code_fences_are_balanced() -> None:
    for path in [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]:
        assert fence_problems(path.read_text()) == [], path.name
