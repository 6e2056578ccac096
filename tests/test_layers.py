"""A seam the import contracts cannot see: one module owns the ``deliveries`` table."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "syndicate"
OWNER = PACKAGE / "outbox" / "table.py"


def _uses_of_the_table(path: Path) -> list[int]:
    """Lines of ``path`` that import the deliveries table or reach it as ``schema.deliveries``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "syndicate.store.schema":
            lines += [node.lineno for alias in node.names if alias.name == "deliveries"]
        elif isinstance(node, ast.Attribute) and node.attr == "deliveries" and isinstance(node.value, ast.Name):
            lines += [node.lineno] if node.value.id == "schema" else []
    return lines


def test_only_the_outbox_table_module_touches_the_deliveries_table():
    users = {path: _uses_of_the_table(path) for path in PACKAGE.rglob("*.py")}
    assert {path for path, lines in users.items() if lines} == {OWNER}


def _diagram(text: str) -> list[str]:
    """The lines of the first state diagram in ``text`` (from its "planned" line to the last "└"), unindented."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("planned ──►"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("└"))
    indent = len(lines[start]) - len(lines[start].lstrip()) - 1
    return [line[indent:].rstrip() for line in lines[start : end + 1]]


def test_the_state_diagram_in_the_docs_is_the_outbox_docstrings_and_names_every_state():
    import syndicate.outbox
    from syndicate.outbox import DeliveryState

    docs = (PACKAGE.parent / "docs" / "delivery.md").read_text(encoding="utf-8")
    assert syndicate.outbox.__doc__ is not None
    diagram = _diagram(syndicate.outbox.__doc__)
    assert _diagram(docs) == diagram
    drawn = "\n".join(diagram)
    assert [state for state in DeliveryState if state.value not in drawn] == []
