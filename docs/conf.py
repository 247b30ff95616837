"""Sphinx configuration of the docs site: MyST Markdown pages, the Python API from docstrings, settings generated.

Built by ``make docs`` (and so by ``make test``) with warnings as errors and nitpicky references.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
# autodoc imports the package, and through it Airflow, which makes its home's folders on import:
# the build has a home of its own, so it writes nothing into ~/airflow and reads no deployment's
# configuration
os.environ["AIRFLOW_HOME"] = str(DOCS / "_build" / "airflow-home")

from airflow_ordo_hooks._version import __version__  # noqa: E402

project = "airflow-ordo-hooks"
copyright = "the airflow-ordo-hooks authors"
version = release = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "ordo_settings"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# headings get GitHub's anchors, so that a link like operators.md#the-webhooks-view works both here
# and on GitHub
myst_heading_anchors = 4

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True

# -n checks every reference. Without the internet there is no intersphinx, so references into
# other projects' docs cannot resolve: the standard library's, and Airflow's and requests' types
# (type hints imported under TYPE_CHECKING, so autodoc sees their bare names). The package's
# internal types (the packages dag_file, callbacks and server, and modules named _name, documented
# nowhere on purpose) are left out too. Nothing
# else is ignored: a reference to a public name of this package must resolve.
nitpick_ignore_regex = [
    ("py:class", r"collections\.abc\.\w+|(pathlib\.)?Path"),
    ("py:class", r"DAG|DagBag|requests\.sessions\.Session"),
    ("py:class", r"(airflow_ordo_hooks\.(_\w+|dag_file\.\w+)\.)?(JobEvents|OnExitStep)"),
    ("py:mod", r"airflow_ordo_hooks\.(_\w+|dag_file|callbacks|server)(\.\w+)*"),
]

html_theme = "alabaster"
html_title = f"airflow-ordo-hooks {release}"
html_show_sourcelink = False


# Docstrings that are not valid reST, or that refer to names this site cannot resolve, withheld
# (their objects stay documented, so references to them resolve) until their modules are fixed:
# {object's full name: why}
WITHHELD_DOCSTRINGS: dict[str, str] = {}


def _withhold(app, what, name, obj, options, lines):
    if name in WITHHELD_DOCSTRINGS:
        lines[:] = ["(This docstring is withheld from the site until it is fixed.)"]


def _dataclass_factories(app, what, name, obj, options, signature, return_annotation):
    # a dataclass field's default_factory renders as <factory>, which Sphinx cannot parse: it then
    # splits the signature at every comma, inside dict[str, str] too
    if signature and "<factory>" in signature:
        signature = signature.replace("<factory>", "...")
    return signature, return_annotation


def setup(app):
    app.connect("autodoc-process-docstring", _withhold)
    app.connect("autodoc-process-signature", _dataclass_factories)
