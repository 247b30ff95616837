"""The ``ordo-hooks-settings`` directive: the configuration reference, generated from ``_settings.SETTINGS``.

Every ``[ordo_hooks]`` key is written once, in ``airflow_ordo_hooks/_settings.py``; the docs read it
at build time, so the reference cannot drift from what the package reads and checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

from airflow_ordo_hooks._settings import SECTION, SETTINGS, Setting

HEADER = ("key", "type", "default", "allowed", "meaning")


class Row(NamedTuple):
    """One key of the reference, each cell as text."""

    name: str
    type: str
    default: str
    allowed: str
    meaning: str


def row(setting: Setting) -> Row:
    """``setting`` as the reference writes it: ``(none)`` for an empty default, booleans as Airflow spells them."""
    if setting.kind is bool:
        default, allowed = str(setting.default).lower(), "true or false"
    elif setting.kind is str:
        default, allowed = setting.default or "(none)", "text"
    else:
        default, allowed = str(setting.default), setting.bounds
    return Row(setting.name, setting.airflow_type, default, allowed, setting.description)


def rows(settings: Iterable[Setting] = SETTINGS) -> list[Row]:
    """The reference's rows, in the order of ``SETTINGS`` (the provider metadata's order)."""
    return [row(s) for s in settings]


def table(settings: Iterable[Setting] = SETTINGS) -> nodes.table:
    """The reference as a docutils table; each key's name is a literal with the target ``setting-<name>``."""
    body = [_row_node(r) for r in rows(settings)]
    group = nodes.tgroup(cols=len(HEADER))
    group += [nodes.colspec(colwidth=w) for w in (18, 8, 14, 14, 46)]
    group += nodes.thead("", _tr([nodes.paragraph(text=h) for h in HEADER]))
    group += nodes.tbody("", *body)
    result = nodes.table(classes=["ordo-hooks-settings"])
    result += nodes.title(text=f"[{SECTION}] settings")
    result += group
    return result


def _row_node(r: Row) -> nodes.row:
    name = nodes.paragraph("", "", nodes.literal(text=r.name), ids=[f"setting-{r.name.replace('_', '-')}"])
    default = nodes.paragraph("", "", nodes.literal(text=r.default) if r.default != "(none)" else nodes.Text(r.default))
    cells = [name, nodes.paragraph(text=r.type), default, nodes.paragraph(text=r.allowed), nodes.paragraph(text=r.meaning)]
    return _tr(cells)


def _tr(paragraphs: list[nodes.paragraph]) -> nodes.row:
    return nodes.row("", *(nodes.entry("", p) for p in paragraphs))


class SettingsDirective(SphinxDirective):
    """``ordo-hooks-settings``: a table of every key, with no arguments or content."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        return [table()]


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("ordo-hooks-settings", SettingsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
