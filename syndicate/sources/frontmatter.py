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
_TOML_END = "(at end of document)"
_KEY = re.compile(r"""^["']?([A-Za-z_][\w-]*)["']?\s*[=:]""")


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
    # The trailing newline lets a value left empty on the last line be reported at that line.
    raw = "\n".join(lines[1:closing]) + "\n"
    meta = _parse(raw, FENCES[fence], closing + 1)
    return Document(meta, "\n".join(lines[closing + 1 :]), closing + 2, _key_lines(lines[1:closing]))


def _key_lines(lines: list[str]) -> dict[str, int]:
    """Line (in the whole file) where each top-level key is first written."""
    found: dict[str, int] = {}
    for number, line in enumerate(lines, start=2):
        if (match := _KEY.match(line)) and match.group(1) not in found:
            found[match.group(1)] = number
    return found


def _parse(raw: str, kind: str, closing_line: int) -> dict[str, Any]:
    try:
        meta = tomllib.loads(raw) if kind == "TOML" else yaml.load(raw, Loader=_YAMLLoader)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        line = int(found.group(1)) + 1 if found else closing_line if _TOML_END in str(exc) else 1
        reason = _TOML_LINE.sub("", str(exc)).replace(_TOML_END, "before the closing +++").strip()
        raise FrontMatterError(f"TOML front matter does not parse: {reason}", line) from exc
    except yaml.YAMLError as exc:
        raise FrontMatterError(f"YAML front matter does not parse: {_yaml_reason(exc)}", _yaml_line(exc)) from exc
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise FrontMatterError(f"{kind} front matter must be a table of keys, not {type(meta).__name__}", 2)
    return {str(k): v for k, v in meta.items()}


def _yaml_line(exc: yaml.YAMLError) -> int:
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 2 if mark is not None else 1


def _yaml_reason(exc: yaml.YAMLError) -> str:
    """PyYAML's problem, and what it was reading when it started (an unclosed quote began there)."""
    reason = getattr(exc, "problem", None) or str(exc)
    context, mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and mark is not None and mark.line + 2 != _yaml_line(exc):
        reason += f" ({context} started on line {mark.line + 2})"
    return str(reason)


class _YAMLLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a value it cannot build (``2026-02-30``) is a YAML error with a line.

    The stock constructors raise bare ``ValueError``/``KeyError`` for such
    values, which would escape as a crash instead of a report.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:
            shown = repr(node.value) if isinstance(node, yaml.ScalarNode) else "this value"
            problem = f"{shown[:80]} is not a valid {node.tag.rsplit(':', 1)[-1]} ({exc})"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from exc
