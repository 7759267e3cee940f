"""Reading `schema.prisma` without Prisma: which tables its models declare, which extensions.

The dry run compares these with what the migrations create: a table the schema declares
and no migration creates was made outside migrations (`prisma db push`, a hand-run
script) — schema drift, which breaks every migration that needs that table on a database
built from the migrations alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_BLOCK = re.compile(r"^\s*model\s+(\w+)\s*\{", re.M)
_MAP = re.compile(r'@@map\(\s*(?:name\s*:\s*)?"([^"]+)"\s*\)')
_SCHEMA = re.compile(r'@@schema\(\s*"([^"]+)"\s*\)')
_EXTENSIONS = re.compile(r"^\s*extensions\s*=\s*\[(.*?)\]", re.M | re.S)
_EXT_ITEM = re.compile(r"(\w+)(?:\s*\(([^)]*)\))?")
_EXT_MAP = re.compile(r'map\s*:\s*"([^"]+)"')


@dataclass(frozen=True)
class PrismaModel:
    """One `model` block: its name, the table it maps to (@@map, else the name), its line."""

    name: str
    table: str
    line: int
    schema: str | None = None


@dataclass(frozen=True)
class PrismaSchema:
    path: Path
    models: list[PrismaModel]
    extensions: list[str]

    def model_for(self, table: str) -> PrismaModel | None:
        """The model mapped to ``table`` (schema-qualified or not), if any."""
        bare = table.split(".")[-1]
        return next((m for m in self.models if m.table == bare), None)


def _strip_comments(text: str) -> str:
    """`//` comments blanked (line numbers kept); strings are left alone."""
    out = []
    for line in text.splitlines():
        cut, quoted = len(line), False
        for i, ch in enumerate(line):
            if ch == '"':
                quoted = not quoted
            elif not quoted and line.startswith("//", i):
                cut = i
                break
        out.append(line[:cut])
    return "\n".join(out)


def _block_end(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return len(text)


def parse_schema(text: str, path: Path = Path("schema.prisma")) -> PrismaSchema:
    """Models (name, table, line) and datasource extensions of a schema.prisma text."""
    code = _strip_comments(text)
    models = []
    for m in _BLOCK.finditer(code):
        body = code[m.end() : _block_end(code, m.end() - 1)]
        mapped = _MAP.search(body)
        schema = _SCHEMA.search(body)
        models.append(
            PrismaModel(
                m[1],
                mapped[1] if mapped else m[1],
                code.count("\n", 0, m.start(1)) + 1,
                schema[1] if schema else None,
            )
        )
    extensions: list[str] = []
    if ext := _EXTENSIONS.search(code):
        for item in _EXT_ITEM.finditer(ext[1]):
            mapped = _EXT_MAP.search(item[2] or "")
            extensions.append(mapped[1] if mapped else item[1])
    return PrismaSchema(path, models, extensions)


def schema_path(migrations_folder: Path) -> Path:
    """Where Prisma keeps the schema: beside the migrations folder."""
    return Path(migrations_folder).parent / "schema.prisma"


def read_schema(path: Path | None) -> PrismaSchema | None:
    """The parsed schema.prisma at ``path``; None when there is none (nothing to compare)."""
    if path is None or not Path(path).is_file():
        return None
    return parse_schema(Path(path).read_text(encoding="utf-8", errors="replace"), Path(path))
