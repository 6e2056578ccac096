"""The Jinja2 templates every renderer uses, and their check for ``syndicate check``."""

from __future__ import annotations

from pathlib import Path

import jinja2

from syndicate.errors import TemplateError
from syndicate.model import Problem

TEMPLATE_SUFFIXES = (".html", ".txt", ".xml", ".j2")


def environment(folder: Path) -> jinja2.Environment:
    """Templates from ``folder``: HTML autoescaped, undefined names an error, not blank."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def load(env: jinja2.Environment, name: str) -> jinja2.Template:
    """Template ``name``, or a :class:`TemplateError` saying which and why."""
    try:
        return env.get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template {name} not found in {env.loader.searchpath}") from exc  # type: ignore[union-attr]
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from exc


def check(folder: Path, required: tuple[str, ...] = ()) -> list[Problem]:
    """Every template under ``folder`` that does not parse, and every required one missing."""
    if not folder.is_dir():
        return [Problem(str(folder), "templates folder does not exist")]
    env = environment(folder)
    problems = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in TEMPLATE_SUFFIXES:
            try:
                env.parse(path.read_text(encoding="utf-8"), path.name, str(path))
            except jinja2.TemplateSyntaxError as exc:
                problems.append(Problem(str(path), exc.message or "syntax error", exc.lineno))
            except UnicodeDecodeError:
                problems.append(Problem(str(path), "not UTF-8"))
    problems.extend(
        Problem(str(folder / name), "required template is missing")
        for name in required
        if not (folder / name).is_file()
    )
    return problems
