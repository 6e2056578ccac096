"""Split a statement file into front matter (TOML ``+++`` or YAML ``---``) and body.

Errors carry the line number in the whole file, so the operator can jump to it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

import yaml

FENCES = {"+++": "TOML", "---": "YAML"}
_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*[=:]")


class FrontMatterError(Exception):
    """The front matter is missing, never closed, or does not parse."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Document:
    """A statement file cut in two, with where each front-matter key was written."""

    meta: dict[str, Any]
    body: str
    body_line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """Line of ``key`` in the file, or of the opening fence if it was not written."""
        return self.key_lines.get(key, 1)


def split(text: str) -> Document:
    """Cut ``text`` (newlines already normalised to ``\\n``) into front matter and body."""
    lines = text.split("\n")
    fence = lines[0].strip()
    if fence not in FENCES:
        raise FrontMatterError("no front matter: the file must start with +++ (TOML) or --- (YAML)", 1)
    closing = next((i for i in range(1, len(lines)) if lines[i].strip() == fence), None)
    if closing is None:
        raise FrontMatterError(f"front matter opened with {fence} on line 1 is never closed", 1)
    raw = "\n".join(lines[1:closing])
    meta = _parse(raw, FENCES[fence])
    key_lines = {m.group(1): n + 2 for n, line in enumerate(lines[1:closing]) if (m := _KEY.match(line))}
    return Document(meta, "\n".join(lines[closing + 1 :]), closing + 2, key_lines)


def _parse(raw: str, kind: str) -> dict[str, Any]:
    try:
        meta = tomllib.loads(raw) if kind == "TOML" else yaml.safe_load(raw)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        line = int(found.group(1)) + 1 if found else 1
        reason = _TOML_LINE.sub("", str(exc)).strip()
        raise FrontMatterError(f"TOML front matter does not parse: {reason}", line) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        raise FrontMatterError(f"YAML front matter does not parse: {reason}", line) from exc
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise FrontMatterError(f"{kind} front matter must be a table of keys, not {type(meta).__name__}", 2)
    return {str(k): v for k, v in meta.items()}
