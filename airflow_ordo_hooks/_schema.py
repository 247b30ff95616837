"""The config formats DAG authors write, as pydantic models, and the one message format of their refusals.

cheek's hooks (:class:`HooksConfig`), cheek's schedule (:class:`CheekSchedule` of
:class:`CheekJob`) and Ordo's on_exit step (:class:`OnExitStepConfig`) are validated here; the
modules that read them (``_hooks_config``, ``_cheek_schedule``, ``_on_exit``) build from the
validated models. A refusal names where the config is, the field, what was wrong and the value
written, cut to :data:`MAX_ECHO` characters::

    cheek schedule x.yaml: job 'a'.retries: expected a whole number 0 or more, got -1

Text (YAML, JSON, a file) is read here too, within bounds checked before anything is built
(:data:`MAX_TEXT`, :data:`MAX_DEPTH`, :data:`MAX_NODES`), so that a hostile config is refused in
milliseconds with the same kind of message instead of exhausting the parsing process.

This module imports pydantic: the modules that read configs import it inside the functions that
validate, so that ``import airflow_ordo_hooks`` in a DAG file does not pay for it.
"""

from __future__ import annotations

import codecs
import itertools
import json
import os
import re
import reprlib
import stat
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from airflow_ordo_hooks._events import EVENTS
from airflow_ordo_hooks.exceptions import ConfigError, TargetError
from airflow_ordo_hooks._targets import MAX_ID, check_target

ID_PATTERN = r"^[A-Za-z0-9_.-]+$"
"""Airflow's rule for DAG ids: a ``trigger_job`` target, and a cheek job name (it becomes a DAG id)."""
ORDO_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
"""Ordo's step ids and param keys: no dot, which separates step from slot in ``step:<id>.<slot>``."""
REFERENCE = re.compile(r"^(job:[A-Za-z0-9_-]+|step:(?P<step>[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+)$")
"""Ordo's ``job:<name>`` (a run parameter) or ``step:<id>.<slot>`` (an output of a step)."""
STEP_TYPES = ("CALL_WEBHOOK",)
"""The executors an on_exit step may use."""
CRON_SHORTCUTS = {
    "@yearly": "@yearly", "@annually": "@yearly", "@monthly": "@monthly", "@weekly": "@weekly",
    "@daily": "@daily", "@midnight": "@daily", "@hourly": "@hourly",
    "@5minutes": "*/5 * * * *", "@10minutes": "*/10 * * * *", "@15minutes": "*/15 * * * *", "@30minutes": "*/30 * * * *",
}
"""cheek's (gronx's) cron shortcuts that Airflow can run, as Airflow writes them; others (``@always``) it cannot."""
MAX_ECHO = 200
"""The most characters of a written value that a message repeats: a huge config gives a short message."""

MAX_TEXT = 4 * 1024 * 1024
"""The most characters of config text (or bytes of a config file) read: a config is a few KB."""
MAX_DEPTH = 32
"""The deepest nesting of a config's text; the deepest valid config (a schedule's hook target) is 6 levels."""
MAX_NODES = 50_000
"""The most values a YAML config may hold once its aliases are expanded (a 1,000-job schedule holds ~15,000)."""
MAX_ITEMS = 100
"""The most items of a list: the targets of one action, the param_keys of a step."""
MAX_JOBS = 1_000
"""The most jobs of a cheek schedule (each becomes a DAG)."""
MAX_ENV = 1_000
"""The most variables of a job's ``env``."""
MAX_RETRIES = 100
"""The most retries of a cheek job: Airflow 3.3 sets no bound; 100 tries 5 s apart is over 8 minutes."""

_ERROR = "ordo_config"  # the type of every error worded here, as opposed to pydantic's own
_NOTHING = object()
ModelT = TypeVar("ModelT", bound=BaseModel)


_REPR = reprlib.Repr()
_REPR.maxlevel = 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_ECHO * 2
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = _REPR.maxfrozenset = 50


def echo(value: Any) -> str:
    """``repr(value)`` for a message, cut to :data:`MAX_ECHO` characters (never walking more of a huge or deep value)."""
    if isinstance(value, str):
        if len(value) <= MAX_ECHO:
            return repr(value)
        return f"{repr(value[: MAX_ECHO + 1])[:MAX_ECHO]}... ({len(value)} characters)"
    text = _REPR.repr(value)
    return text if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO]}..."


def _cut(text: str) -> str:
    """``text`` cut to :data:`MAX_ECHO` characters, for a message."""
    return text if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO]}..."


def refusal(message: str, *, got: Any = _NOTHING, at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """
    An error worded for the DAG author, for a validator to raise.

    :param message: what was wrong, e.g. ``expected a path``.
    :param got: the value written, echoed after the message as ``, got <value>``.
    :param at: the field it concerns, below the one being validated (a model's own check of a field).
    """
    ctx: dict[str, Any] = {"message": message, "at": at}
    if got is not _NOTHING:
        ctx["got"] = got
    return PydanticCustomError(_ERROR, "{message}", ctx)


def reword(message: str, *, got: bool = True, items: str | None = None) -> WrapValidator:
    """
    Report a value that pydantic refuses as ``message`` (``, got <value>`` after it unless ``got`` is false).

    :param items: report a refused item or key of the value as this message too, at the value's
        level; without it, such an error names the item (``[2]``, ``.key``) in pydantic's words.
    """

    def check(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            for error in exc.errors():
                if error["type"] == _ERROR:
                    continue
                if not error["loc"]:
                    raise refusal(message, **({"got": value} if got else {})) from None
                if items is not None:
                    raise refusal(items, got=value) from None
            raise

    return WrapValidator(check)


def expect(what: str, *, items: str | None = None) -> WrapValidator:
    """Report a value that is not ``what`` as ``expected <what>, got <value>`` (see :func:`reword`)."""
    return reword(f"expected {what}", items=None if items is None else f"expected {items}")


def describe(error: ValidationError, where: str, *, labels: Mapping[str, str] | None = None) -> str:
    """
    The message of a refused config: ``<where>.<field path>: <what was wrong>, got <value>``, for its first error.

    :param error: what pydantic raised.
    :param where: how the message names the config (e.g. ``hooks of task 'brew'``).
    :param labels: top-level mappings whose keys the path names in words: ``{"jobs": "job"}`` makes
        ``jobs.a.retries`` read ``: job 'a'.retries``.
    """
    errors = error.errors(include_url=False)
    first = errors[0]
    ctx = first.get("ctx") or {}
    path = _path((*first["loc"], *ctx.get("at", ())), labels or {})
    if first["type"] == _ERROR:
        message = ctx["message"] + (f", got {echo(ctx['got'])}" if "got" in ctx else "")
    elif first["type"] == "missing":
        message = "missing"
    else:  # a check no field rewords: pydantic's own words
        message = f"{first['msg']}, got {echo(first['input'])}"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}{path}: {message}{more}"


def validate(
    model: type[ModelT],
    data: Any,
    *,
    where: str,
    error: type[ConfigError],
    context: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> ModelT:
    """
    ``data`` validated as ``model``, or ``error`` raised with the message of :func:`describe`.

    :param context: what the models' checks need from the caller (e.g. the DAG's task ids).
    """
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as exc:
        raise error(describe(exc, where, labels=labels)) from None


def _path(loc: tuple[str | int, ...], labels: Mapping[str, str]) -> str:
    parts = list(loc)
    text = ""
    if len(parts) > 1 and parts[0] in labels:
        text = f": {labels[parts[0]]} {echo(parts[1])}"
        parts = parts[2:]
    for part in parts:
        if part == "[key]":  # pydantic's mark of a refused key: the key is already named
            continue
        text += f"[{part}]" if isinstance(part, int) else f".{_cut(str(part))}"
    return text


# The text of a config, read within bounds before anything is built from it


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
        raise error(f"{cannot}: {_cut(str(exc))}") from None
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
        raise error(f"{where}: not valid YAML: {_cut(str(exc))}") from None


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
        return _path(tuple(p for p in parts if p is not None), labels)

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
                    raise error(f"{where}{path(part)}: the alias *{_cut(event.anchor)} is inside its own anchor (an endless value)")
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
        raise error(f"{where}: not valid JSON: {_cut(str(exc))}") from None


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
                raise error(f"{where}{_path(_json_path(frames), {})}: nested more than {MAX_DEPTH} levels deep")
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


class _Config(BaseModel):
    """A mapping of known fields: it refuses any other, and remembers the order they were written in."""

    model_config = ConfigDict(extra="forbid")  # the check below words the refusal; this guarantees it
    expected: ClassVar[str] = "a mapping of {known}"
    """What a value that is not a mapping should have been; ``{known}`` lists the fields."""
    noun: ClassVar[str] = "field"
    """What an unknown key is called in the refusal (``unknown event 'x'``)."""
    _written: tuple[str, ...] = PrivateAttr(())

    @classmethod
    def _known(cls, info: ValidationInfo) -> tuple[str, ...]:
        return tuple(cls.model_fields)

    @classmethod
    def _refuse(cls, data: Mapping[Any, Any], info: ValidationInfo) -> None:
        """Refusals particular to a model, made before its fields are checked."""

    @classmethod
    def _unknown(cls, key: Any, info: ValidationInfo) -> str:
        return f"unknown {cls.noun} {echo(key)}; expected one of {', '.join(cls._known(info))}"

    @model_validator(mode="wrap")
    @classmethod
    def _check_fields(cls, data: Any, handler: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, Mapping):
            raise refusal("expected " + cls.expected.format(known=", ".join(cls._known(info))), got=data)
        cls._refuse(data, info)
        known = cls._known(info)
        for key in data:
            if key not in known:
                raise refusal(cls._unknown(key, info))
        model = handler(dict(data))
        model._written = tuple(data)
        return model

    def written(self) -> Iterator[tuple[str, Any]]:
        """The fields the config wrote, with their validated values, in the order it wrote them."""
        return ((name, getattr(self, name)) for name in self._written)


# cheek's hooks: {event: {action: [target, ...]}}


def at_most(limit: int, what: str) -> BeforeValidator:
    """Refuse a list or mapping of more than ``limit`` items before any of them is checked."""

    def check(value: Any) -> Any:
        if isinstance(value, (list, tuple, Mapping)) and len(value) > limit:
            raise refusal(f"{len(value):,} {what}; at most {limit:,}")
        return value

    return BeforeValidator(check)


def _id_length(value: str) -> str:
    if len(value) > MAX_ID:
        raise refusal(f"{len(value):,} characters; an id is at most {MAX_ID} (Airflow's limit)", got=value)
    return value


def _webhook_target(value: Any) -> str:
    try:
        return check_target(value, templates=False)
    except TargetError as exc:
        raise refusal(str(exc)) from None


WebhookTargets = Annotated[
    list[Annotated[str, PlainValidator(_webhook_target)]], expect("a list of targets"), at_most(MAX_ITEMS, "targets")
]
DagIds = Annotated[
    list[Annotated[str, Field(strict=True, pattern=ID_PATTERN), expect("a DAG id (letters, digits, _ - .)"), AfterValidator(_id_length)]],
    expect("a list of targets"),
    at_most(MAX_ITEMS, "targets"),
]


class EventActions(_Config):
    """What one event does: each action with its targets (URLs or ``conn:<conn_id>``; DAG ids for ``trigger_job``)."""

    expected = "a mapping of actions ({known})"
    noun = "action"

    notify_webhook: WebhookTargets | None = None
    notify_slack_webhook: WebhookTargets | None = None
    notify_discord_webhook: WebhookTargets | None = None
    trigger_job: DagIds | None = None


class HooksConfig(_Config):
    """
    A hooks config, ``{event: {action: [target, ...]}}``.

    Validation context: ``events``, the events allowed (default all; a DAG run has no ``on_retries_exhausted``).
    """

    expected = "a mapping of events ({known})"
    noun = "event"

    on_success: EventActions | None = None
    on_error: EventActions | None = None
    on_retries_exhausted: EventActions | None = None

    @classmethod
    def _known(cls, info: ValidationInfo) -> tuple[str, ...]:
        return tuple((info.context or {}).get("events", EVENTS))

    @classmethod
    def _unknown(cls, key: Any, info: ValidationInfo) -> str:
        why = " (a DAG run is not retried: use on_error)" if key in EVENTS else ""
        return f"unknown event {echo(key)}{why}; expected one of {', '.join(cls._known(info))}"


# cheek's schedule: {jobs: {name: job}, on_*, tz_location, encoding}


_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def _expand(config: Any) -> Any:
    """``${NAME}`` in hook targets, from the environment of the process that parses the DAG file; an unset one is refused."""
    if not isinstance(config, Mapping):
        return config
    expanded: dict[Any, Any] = {}
    for action, targets in config.items():
        if not isinstance(targets, list) or len(targets) > MAX_ITEMS:
            expanded[action] = targets  # refused as it is
            continue
        expanded[action] = []
        for index, target in enumerate(targets):
            if isinstance(target, str):
                for variable in _VARIABLE.finditer(target):
                    if variable.group(1) not in os.environ:
                        raise refusal(f"environment variable {_cut(variable.group(1))} is not set", got=target, at=(action, index))
                target = os.path.expandvars(target)
            expanded[action].append(target)
    return expanded


ScheduleEventActions = Annotated[EventActions | None, BeforeValidator(_expand)]


def _command(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        words = value.split()  # cheek splits on white space (Go's strings.Fields), it runs no shell
    elif isinstance(value, list) and all(isinstance(w, str) for w in value):
        words = value
    else:
        raise refusal("expected a string or a list of strings", got=value)
    if not words:
        raise refusal("expected a command", got=value)
    return tuple(words)


def _cron(value: Any) -> str | None:
    if value is None or value == "":
        return None  # cheek: a job without cron only runs when triggered
    if not isinstance(value, str):
        raise refusal("expected a cron string", got=value)
    text = value.strip()
    if text.startswith("@"):
        if text.lower() not in CRON_SHORTCUTS:
            raise refusal(f"{echo(value)} has no Airflow equivalent; expected a 5-field cron or one of {', '.join(CRON_SHORTCUTS)}")
        return CRON_SHORTCUTS[text.lower()]
    from croniter import croniter

    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise refusal(f"{echo(value)} is not a valid 5-field cron expression")
    return text


def _encoding(value: Any) -> str | None:
    if value is None or value == "":
        return None
    try:
        codecs.lookup(value)
    except (LookupError, TypeError):
        raise refusal(f"unknown encoding {echo(value)}") from None
    return value


def _time_zone(value: Any) -> str | None:
    if value in (None, "", "Local"):
        return None  # cheek's default: the time zone of the machine, as Airflow's default is
    import pendulum

    try:
        pendulum.timezone(str(value))
    except Exception:  # pendulum raises several kinds for a name it does not know
        raise refusal(f"unknown time zone {echo(value)}") from None
    return str(value)


JobName = Annotated[
    str,
    Field(strict=True, pattern=ID_PATTERN),
    reword("a job name must be letters, digits, _ - . (it becomes a DAG id)", got=False),
    AfterValidator(_id_length),
]


def _retries(value: int) -> int:
    if value > MAX_RETRIES:
        raise refusal(f"at most {MAX_RETRIES} (tries 5 s apart: a longer outage is a job for the receiver)", got=value)
    return value



class CheekJob(_Config):
    """One job of a cheek schedule: a command, when to run it, and its hooks (``${NAME}`` in targets expanded)."""

    expected = "a mapping with at least 'command'"

    command: Annotated[tuple[str, ...], PlainValidator(_command)]
    """The command's words."""
    cron: Annotated[str | None, PlainValidator(_cron)] = None
    """The Airflow schedule: a 5-field cron or one of Airflow's ``@`` shortcuts."""
    env: Annotated[
        dict[str, str | int | float | bool], expect("a mapping", items="names mapped to plain values"), at_most(MAX_ENV, "variables")
    ] | None = None
    working_directory: Annotated[str, Field(min_length=1), expect("a path")] | None = None
    retries: Annotated[int, Field(strict=True, ge=0), expect("a whole number 0 or more"), AfterValidator(_retries)] = 0
    disable_concurrent_execution: Annotated[bool, Field(strict=True), expect("true or false")] = False
    encoding: Annotated[str | None, PlainValidator(_encoding)] = None
    on_success: ScheduleEventActions = None
    on_error: ScheduleEventActions = None
    on_retries_exhausted: ScheduleEventActions = None

    @classmethod
    def _refuse(cls, data: Mapping[Any, Any], info: ValidationInfo) -> None:
        if "command" not in data:
            raise refusal("missing; every cheek job runs a command", at=("command",))


class CheekSchedule(_Config):
    """
    A cheek schedule: its jobs, the hooks of every job, the time zone of every cron, the default encoding.

    Validation context: ``known_dag_ids``, DAGs defined elsewhere that ``trigger_job`` may name
    besides the schedule's jobs.
    """

    expected = "a mapping with 'jobs'"

    jobs: Annotated[
        dict[JobName, CheekJob], Field(min_length=1), expect("a mapping of job names to jobs"), at_most(MAX_JOBS, "jobs")
    ]
    tz_location: Annotated[str | None, PlainValidator(_time_zone)] = None
    encoding: Annotated[str | None, PlainValidator(_encoding)] = None
    on_success: ScheduleEventActions = None
    on_error: ScheduleEventActions = None
    on_retries_exhausted: ScheduleEventActions = None

    @classmethod
    def _refuse(cls, data: Mapping[Any, Any], info: ValidationInfo) -> None:
        if "jobs" not in data:
            raise refusal("expected a mapping of job names to jobs", got=None, at=("jobs",))

    @model_validator(mode="after")
    def _triggered_jobs_exist(self, info: ValidationInfo) -> CheekSchedule:
        targets = set(self.jobs) | set((info.context or {}).get("known_dag_ids", ()))
        levels: list[tuple[tuple[str, ...], _Config]] = [((), self)]
        levels += [(("jobs", name), job) for name, job in self.jobs.items()]
        for at, level in levels:
            for event in EVENTS:
                actions = getattr(level, event)
                for target in (actions and actions.trigger_job) or ():
                    if target not in targets:
                        jobs = ", ".join(sorted(self.jobs))
                        raise refusal(
                            f"no job {echo(target)} in the schedule (jobs: {_cut(jobs)}); define it, or pass known_dag_ids",
                            at=(*at, event, "trigger_job"),
                        )
        return self


# Ordo's on_exit step: {id, type, inputs: {waits_for}, param_keys}


def _reference_length(value: str) -> str:
    if len(value) > 2 * MAX_ID:
        raise refusal(f"{len(value):,} characters; a reference is at most {2 * MAX_ID} (its ids are Airflow ids)", got=value)
    return value


class CallWebhookInputs(_Config):
    """The input slots of a ``CALL_WEBHOOK`` step: ``waits_for``, a reference to what the step waits for.

    Validation context: ``task_ids``, the DAG's tasks, one of which a ``step:`` reference must name.
    """

    expected = "an object of input slots"

    waits_for: Annotated[
        str, Field(strict=True, pattern=REFERENCE.pattern), expect("'job:<name>' or 'step:<id>.<slot>'"), AfterValidator(_reference_length)
    ]

    @classmethod
    def _refuse(cls, data: Mapping[Any, Any], info: ValidationInfo) -> None:
        extra = [k for k in data if k != "waits_for"]
        if extra:
            raise refusal(f"CALL_WEBHOOK accepts exactly one input slot, 'waits_for'; got {echo(extra[0])}")
        if "waits_for" not in data:
            raise refusal("CALL_WEBHOOK needs its input slot 'waits_for'", got=dict(data))

    @field_validator("waits_for")
    @classmethod
    def _names_a_task(cls, value: str, info: ValidationInfo) -> str:
        step = REFERENCE.match(value)["step"]
        task_ids = (info.context or {}).get("task_ids")
        if step is not None and task_ids is not None and step not in task_ids:
            tasks = ", ".join(sorted(task_ids)) or "none"
            raise refusal(f"{echo(value)} names step {echo(step)}, which is not a task of the DAG (tasks: {_cut(tasks)})")
        return value


def _step_type(value: Any) -> str:
    if value not in STEP_TYPES:
        raise refusal(f"Unsupported step type: {_cut(str(value))}; expected one of {', '.join(STEP_TYPES)}")
    return value


def _param_keys(value: list[str]) -> list[str]:
    if not value:
        raise refusal("CALL_WEBHOOK needs at least one, holding the webhook URL (e.g. ['webhook_url'])", got=value)
    duplicates = sorted({k for k in value if value.count(k) > 1})
    if duplicates:
        raise refusal(f"{echo(duplicates[0])} is listed more than once in {echo(value)}")
    return value


class OnExitStepConfig(_Config):
    """
    Ordo's on_exit step. ``CALL_WEBHOOK`` is its one type, so ``inputs`` are its slots.

    Validation context: ``task_ids`` (see :class:`CallWebhookInputs`).
    """

    expected = "a step object with id, type and inputs"

    id: Annotated[str, Field(strict=True, pattern=ORDO_ID_PATTERN), expect("an id of letters, digits, _ and -"), AfterValidator(_id_length)]
    type: Annotated[str, PlainValidator(_step_type)]
    inputs: CallWebhookInputs = Field(default_factory=dict, validate_default=True)
    param_keys: Annotated[
        list[Annotated[str, Field(strict=True, pattern=ORDO_ID_PATTERN, max_length=MAX_ID)]],
        Field(strict=True),
        AfterValidator(_param_keys),
        expect("a list of parameter names", items="a list of parameter names"),
        at_most(MAX_ITEMS, "parameter names"),
    ] = Field(default_factory=list, validate_default=True)

    @classmethod
    def _refuse(cls, data: Mapping[Any, Any], info: ValidationInfo) -> None:
        for forbidden in ("outputs", "depends_on"):
            if forbidden in data:
                raise refusal(
                    "not allowed on an on_exit step (it runs after all steps and produces nothing)",
                    got=data[forbidden],
                    at=(forbidden,),
                )
