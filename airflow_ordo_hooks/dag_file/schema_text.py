"""Config text (a file, YAML, JSON) read within bounds checked before anything is built from it.

A hostile config (a huge file, a FIFO, YAML's "billion laughs", JSON nested 100,000 deep) is
refused at once, naming the field where it can, in the message format of every refusal
(:mod:`airflow_ordo_hooks.dag_file.schema_base`), instead of exhausting the process that parses the DAG file.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import stat
from collections.abc import Iterator, Mapping
from typing import Any

from airflow_ordo_hooks.dag_file.schema_base import MAX_ECHO, cut, field_path
from airflow_ordo_hooks.exceptions import ConfigError

MAX_TEXT = 4 * 1024 * 1024
"""The most characters of config text (or bytes of a config file) read: a config is a few KB."""
MAX_DEPTH = 32
"""The deepest nesting of a config's text; the deepest valid config (a schedule's hook target) is 6 levels."""
MAX_NODES = 50_000
"""The most values a YAML config may hold once its aliases are expanded (a 1,000-job schedule holds ~15,000)."""


def read_text(path: str | os.PathLike[str], where: str, error: type[ConfigError], *, what: str = "it") -> str:
    """
    The text of a config file, or ``error``: not a regular file, larger than :data:`MAX_TEXT`, not UTF-8.

    :param where: how the message names the config (e.g. ``cheek schedule x.yaml``).
    :param what: how it names the file after ``cannot read``.
    """
    cannot = f"{where}: cannot read {what}"
    try:
        # a FIFO or a device would block or never end: only a regular file is read
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise error(f"{cannot}: not a regular file")
            with open(fd, "rb", closefd=False) as f:
                data = f.read(MAX_TEXT + 1)
        finally:
            os.close(fd)
    except ConfigError:
        raise
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise error(f"{cannot}: {cut(str(exc))}") from None
    if len(data) > MAX_TEXT:
        raise error(f"{cannot}: larger than {MAX_TEXT:,} bytes; a config is a few KB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{cannot}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})") from None


def _check_size(text: str, where: str, error: type[ConfigError]) -> None:
    if len(text) > MAX_TEXT:
        raise error(f"{where}: {len(text):,} characters; a config is a few KB, at most {MAX_TEXT:,} are read")


def load_yaml(text: str, where: str, error: type[ConfigError], *, labels: Mapping[str, str] | None = None) -> Any:
    """
    YAML ``text`` as Python values (YAML's safe subset), or ``error`` naming the field.

    Before any value is built, the text's events are counted: nesting deeper than
    :data:`MAX_DEPTH`, more than :data:`MAX_NODES` values once aliases are expanded (a "billion
    laughs" of nested aliases) and an alias inside its own anchor are refused.

    :param labels: as for :func:`describe`.
    """
    import yaml

    _check_size(text, where, error)
    # libyaml parses 10 to 20 times faster; its recursive composer is safe once the depth is bounded
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_events(yaml.parse(text, Loader=loader_class), where, error, labels or {})
        return yaml.load(text, Loader=loader_class)  # noqa: S506 - a safe loader
    except ConfigError:
        raise
    except yaml.YAMLError as exc:
        raise error(f"{where}: not valid YAML: {_yaml_problem(exc, text)}") from None
    except (ValueError, TypeError, OverflowError) as exc:  # a scalar YAML resolves but Python cannot build (a 5,000-digit int)
        raise error(f"{where}: not valid YAML: {cut(str(exc))}") from None


def _yaml_problem(exc: Any, text: str) -> str:
    message = str(exc)
    message = message if len(message) <= 4 * MAX_ECHO else f"{message[:4 * MAX_ECHO]}..."
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        lines = text.splitlines()
        if mark.line < len(lines) and "${" in lines[mark.line]:
            message += "\n(a ${NAME} inside [ ] or { } must be quoted: ['${NAME}/path'])"
    return message


_MAX_DIGITS = 4_000  # Python refuses to build a decimal integer of more than 4,300 digits, without naming the field
_NUMBER = re.compile(r"[-+]?[0-9][0-9_]*")


def _check_events(events: Iterator[Any], where: str, error: type[ConfigError], labels: Mapping[str, str]) -> None:
    """Refuse, naming the field, a YAML event stream nested too deep or too large once its aliases are expanded."""
    import yaml

    total = 0  # values so far, an alias counting the values of its anchor
    sizes: dict[str, int] = {}  # anchor -> values of its node, once complete
    frames: list[list[Any]] = []  # open collections: [is mapping, values seen, last key, path part, anchor, total at start]

    def path(part: Any) -> str:
        parts = [f[3] for f in frames] + [part]
        return field_path(tuple(p for p in parts if p is not None), labels)

    for event in events:
        if isinstance(event, yaml.CollectionEndEvent):
            frame = frames.pop()
            if frame[4] is not None:
                sizes[frame[4]] = total - frame[5]
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        part = None
        if frames:
            frame = frames[-1]
            if frame[0]:
                if frame[1] % 2 == 0:  # a key: the path names the value it introduces
                    frame[2] = event.value if isinstance(event, yaml.ScalarEvent) else "?"
                else:
                    part = frame[2]
            else:
                part = frame[1]
            frame[1] += 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:
                if any(f[4] == event.anchor for f in frames):
                    raise error(f"{where}{path(part)}: the alias *{cut(event.anchor)} is inside its own anchor (an endless value)")
                continue  # an unknown anchor: the composer says so
            total += sizes[event.anchor]
        else:
            total += 1
        if total > MAX_NODES:
            raise error(f"{where}{path(part)}: more than {MAX_NODES:,} values (aliases expanded); a config holds a few hundred")
        if isinstance(event, yaml.ScalarEvent) and event.implicit[0] and len(event.value) > _MAX_DIGITS and _NUMBER.fullmatch(event.value):
            raise error(f"{where}{path(part)}: a number of {len(event.value):,} digits")
        if isinstance(event, yaml.CollectionStartEvent):
            frames.append([isinstance(event, yaml.MappingStartEvent), 0, None, part, event.anchor, total - 1])
            if len(frames) > MAX_DEPTH:
                raise error(f"{where}{path(None)}: nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, yaml.ScalarEvent) and event.anchor is not None:
            sizes[event.anchor] = 1


_JSON_STRING = r'"(?:[^"\\]|\\[\s\S]?)*+(?:"|\Z)'  # to the end of the text if unclosed: one pass, never quadratic
_JSON_TOKEN = re.compile(_JSON_STRING + r"|[\[\]{}:,]")


def load_json(text: str, where: str, error: type[ConfigError]) -> Any:
    """JSON ``text`` as Python values, or ``error``: larger than :data:`MAX_TEXT`, nested deeper than :data:`MAX_DEPTH`."""
    _check_size(text, where, error)
    if text.count("[") + text.count("{") > MAX_DEPTH:  # else it cannot be too deep
        _check_json_depth(text, where, error)
    try:
        return json.loads(text)
    except ValueError as exc:  # also a number of more than 4,300 digits
        raise error(f"{where}: not valid JSON: {cut(str(exc))}") from None


def _check_json_depth(text: str, where: str, error: type[ConfigError]) -> None:
    """Refuse, naming the field, JSON nested deeper than :data:`MAX_DEPTH` (``json`` would raise RecursionError)."""
    depth = {"[": 1, "{": 1, "]": -1, "}": -1}
    outside_strings = re.sub(_JSON_STRING, "", text)
    brackets = re.sub(r"[^\[\]{}]", "", outside_strings)
    if max(itertools.accumulate(map(depth.__getitem__, brackets)), default=0) <= MAX_DEPTH:
        return
    # too deep: walk the tokens again to name the field where it happens
    frames: list[list[Any]] = []  # [is object, key or index, expecting a key]
    for token in _JSON_TOKEN.finditer(text):
        t = token.group()
        if t in ("[", "{"):
            if len(frames) == MAX_DEPTH:
                raise error(f"{where}{field_path(_json_path(frames), {})}: nested more than {MAX_DEPTH} levels deep")
            frames.append([t == "{", None if t == "{" else 0, t == "{"])
        elif t in ("]", "}"):
            if frames:
                frames.pop()
        elif t == ",":
            if frames:
                if frames[-1][0]:
                    frames[-1][2] = True
                else:
                    frames[-1][1] += 1
        elif t == ":":
            if frames:
                frames[-1][2] = False
        elif frames and frames[-1][0] and frames[-1][2]:
            frames[-1][1] = t[1:-1]
    raise error(f"{where}: nested more than {MAX_DEPTH} levels deep")


def _json_path(frames: list[list[Any]]) -> tuple[str | int, ...]:
    """The keys and indexes down to the innermost open collection of ``frames``."""
    return tuple(f[1] for f in frames if f[1] is not None)
