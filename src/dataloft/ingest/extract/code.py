"""Source code: kept verbatim, one Section per file, with its `language` in meta."""

from __future__ import annotations

from pathlib import PurePosixPath

from dataloft.ingest.extract.base import Extracted, Section, register
from dataloft.ingest.extract.decode import decode_text

LANGUAGES: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "jsx",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".java": "java", ".go": "go", ".rs": "rust", ".c": "c", ".h": "c",
    ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".cs": "csharp", ".rb": "ruby", ".php": "php", ".swift": "swift", ".kt": "kotlin",
    ".kts": "kotlin", ".scala": "scala", ".sc": "scala", ".groovy": "groovy",
    ".sh": "shell", ".bash": "shell", ".zsh": "shell", ".fish": "fish", ".ps1": "powershell",
    ".bat": "batch", ".cmd": "batch", ".sql": "sql", ".r": "r", ".m": "objective-c",
    ".mm": "objective-cpp", ".pl": "perl", ".pm": "perl", ".lua": "lua", ".dart": "dart",
    ".ex": "elixir", ".exs": "elixir", ".erl": "erlang", ".hs": "haskell", ".clj": "clojure",
    ".elm": "elm", ".fs": "fsharp", ".fsx": "fsharp", ".ml": "ocaml", ".jl": "julia",
    ".vue": "vue", ".svelte": "svelte", ".css": "css", ".scss": "scss", ".sass": "sass",
    ".less": "less", ".zig": "zig", ".nim": "nim", ".v": "verilog", ".vhd": "vhdl",
    ".proto": "protobuf", ".graphql": "graphql", ".gql": "graphql", ".tf": "terraform",
    ".hcl": "hcl", ".toml": "toml", ".ini": "ini", ".cfg": "ini", ".gradle": "groovy",
    ".cmake": "cmake", ".asm": "assembly", ".s": "assembly", ".f90": "fortran",
    ".pas": "pascal", ".sol": "solidity", ".tex": "latex",
    "dockerfile": "dockerfile", "makefile": "makefile", "gemfile": "ruby",
    "rakefile": "ruby", "jenkinsfile": "groovy", "cmakelists.txt": "cmake",
}

_CONTENT_TYPES = ("text/x-source", "text/x-python", "text/x-script.python",
                  "application/x-python-code", "text/javascript", "application/javascript",
                  "application/x-javascript", "text/typescript", "application/typescript",
                  "text/x-java-source", "text/x-java", "text/x-go", "text/x-rust", "text/x-c",
                  "text/x-csrc", "text/x-chdr", "text/x-c++", "text/x-c++src", "text/x-csharp",
                  "text/x-ruby", "application/x-ruby", "text/x-php", "application/x-php",
                  "text/x-swift", "text/x-kotlin", "text/x-scala", "text/x-sh",
                  "application/x-sh", "text/x-shellscript", "application/sql", "text/x-sql",
                  "text/x-r", "text/css", "text/x-toml", "application/toml")


def language_of(name: str) -> str:
    path = PurePosixPath(name.lower())
    return LANGUAGES.get(path.name) or LANGUAGES.get(path.suffix) or "text"


@register("code", tuple(LANGUAGES), _CONTENT_TYPES)
def extract_code(data: bytes, name: str) -> Extracted:
    yield Section(decode_text(data), {"language": language_of(name)}, verbatim=True)
