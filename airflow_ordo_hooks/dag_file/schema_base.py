"""What every config format is validated with: a base model of known fields, the checks they share, the wording of a refusal.

A refusal names where the config is, the field, what was wrong and the value written, cut to
:data:`MAX_ECHO` characters::

    cheek schedule x.yaml: job 'a'.retries: expected a whole number 0 or more, got -1

A model's validators raise :func:`refusal`, or wrap a field with :func:`reword` / :func:`expect`;
:func:`validate` validates a config against its model and raises the message :func:`describe`
words from pydantic's first error.

This module imports pydantic: see :mod:`airflow_ordo_hooks.dag_file.schema` for who may import it, and when.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from airflow_ordo_hooks._targets import MAX_ID
from airflow_ordo_hooks.exceptions import ConfigError

ID_PATTERN = r"^[A-Za-z0-9_.-]+$"
"""Airflow's rule for DAG ids: a ``trigger_job`` target, and a cheek job name (it becomes a DAG id)."""
MAX_ECHO = 200
"""The most characters of a written value that a message repeats: a huge config gives a short message."""
MAX_ITEMS = 100
"""The most items of a list: the targets of one action, the param_keys of a step."""

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


def cut(text: str) -> str:
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
    path = field_path((*first["loc"], *ctx.get("at", ())), labels or {})
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


def field_path(loc: tuple[str | int, ...], labels: Mapping[str, str]) -> str:
    """How a message names the field at ``loc`` (``.on_error.notify_webhook[0]``; see :func:`describe` for ``labels``)."""
    parts = list(loc)
    text = ""
    if len(parts) > 1 and parts[0] in labels:
        text = f": {labels[parts[0]]} {echo(parts[1])}"
        parts = parts[2:]
    for part in parts:
        if part == "[key]":  # pydantic's mark of a refused key: the key is already named
            continue
        text += f"[{part}]" if isinstance(part, int) else f".{cut(str(part))}"
    return text


# The base of every config model, and the checks the formats share


class ConfigModel(BaseModel):
    """A mapping of known fields: it refuses any other, and remembers the order they were written in."""

    model_config = ConfigDict(extra="forbid")  # the check below words the refusal; this guarantees it
    expected: ClassVar[str] = "a mapping of {known}"
    """What a value that is not a mapping should have been; ``{known}`` lists the fields."""
    noun: ClassVar[str] = "field"
    """What an unknown key is called in the refusal (``unknown event 'x'``)."""
    required: ClassVar[Mapping[str, str]] = {}
    """The fields a config cannot go without, each with what its refusal says when it is missing."""
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
        for name, message in cls.required.items():
            if name not in data:
                raise refusal(message, at=(name,))
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


def at_most(limit: int, what: str) -> BeforeValidator:
    """Refuse a list or mapping of more than ``limit`` items before any of them is checked."""

    def check(value: Any) -> Any:
        if isinstance(value, (list, tuple, Mapping)) and len(value) > limit:
            raise refusal(f"{len(value):,} {what}; at most {limit:,}")
        return value

    return BeforeValidator(check)


def id_length(value: str) -> str:
    """Refuse an id longer than Airflow allows (:data:`~airflow_ordo_hooks._targets.MAX_ID`)."""
    if len(value) > MAX_ID:
        raise refusal(f"{len(value):,} characters; an id is at most {MAX_ID} (Airflow's limit)", got=value)
    return value
