"""The docs stay true: a short README whose links resolve, CONTRIBUTING's module table is the tree, every setting in the reference.

The site itself is built strictly by ``make docs`` (part of ``make test``), which checks every link
and reference between its pages; the README is not part of it, so its links are checked here.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from airflow_ordo_hooks import _settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "airflow_ordo_hooks"


def _settings_extension():
    spec = importlib.util.spec_from_file_location("ordo_settings", ROOT / "docs" / "_ext" / "ordo_settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub (and MyST, with ``myst_heading_anchors``) gives the headings of ``markdown``."""
    found, seen, fenced = set(), {}, False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.match(r"#{1,6} (.+)", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", heading[1].strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def _links(markdown: str) -> list[str]:
    """The targets of the Markdown links and images in ``markdown``, outside code."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", text)


README = (ROOT / "README.md").read_text()


def test_the_readme_is_what_a_newcomer_needs_first():
    lines = README.splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail to a page under docs/"
    long = [n for n, line in enumerate(lines, 1) if len(line) > 200]
    assert not long, f"README.md lines over 200 characters: {long}"
    for section in ("## Install", "## Example", "## Two commands", "## Documentation"):
        assert section in README
    assert README.index("## Install") < README.index("## Two commands")


@pytest.mark.parametrize("link", sorted(set(_links(README))))
def test_every_relative_link_in_the_readme_resolves(link):
    if re.match(r"[a-z]+:", link):
        return  # an absolute URL: not checked without the internet
    path, _, anchor = link.partition("#")
    target = (ROOT / path).resolve() if path else ROOT / "README.md"
    assert target.exists(), f"README.md links to {path}, which is not in the repository"
    assert ROOT in target.parents or target == ROOT
    if anchor:
        assert target.suffix == ".md", f"README.md links to an anchor of {path}, which is not Markdown"
        assert anchor in _anchors(target.read_text()), f"{path} has no heading with the anchor #{anchor}"


def test_the_anchor_rule_is_githubs():
    assert _anchors("# cheek's job events on tasks\n## trigger_job\n## Nothing lost: the delivery ledger\n## X\n## X") == {
        "cheeks-job-events-on-tasks",
        "trigger_job",
        "nothing-lost-the-delivery-ledger",
        "x",
        "x-1",
    }
    assert _anchors("```sh\n# a comment\n```\n") == set()


def test_contributings_module_table_is_the_tree():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text[text.index("## The package's modules") :]
    listed = set(re.findall(r"^\| `(airflow_ordo_hooks/[^`]*)` \|", section, re.M))
    tree = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        # a subpackage is listed by its folder; the package root by its __init__.py
        sub = path.name == "__init__.py" and path.parent != PACKAGE
        tree.add(relative.removesuffix("__init__.py") if sub else relative)
    assert listed == tree, (
        "CONTRIBUTING.md's module table is not the tree: add a row for each module in the tree only, "
        f"remove each row in the table only. In the tree only: {sorted(tree - listed)}; "
        f"in the table only: {sorted(listed - tree)}"
    )


def test_the_configuration_reference_renders_every_setting():
    extension = _settings_extension()
    names = [s.name for s in _settings.SETTINGS]
    assert [r.name for r in extension.rows()] == names
    rendered = extension.table().astext()
    missing = [n for n in names if n not in rendered]
    assert not missing, f"the configuration reference leaves out {missing}"
    for setting, row in zip(_settings.SETTINGS, extension.rows()):
        assert setting.description in rendered and row.type == setting.airflow_type
    assert "```{ordo-hooks-settings}" in (ROOT / "docs" / "configuration.md").read_text()
