"""Validation in one place: function arguments (methods, models, the training loop) and experiment configs.

Arguments are checked at the boundary and a bad one raises ``ValueError`` quoting the
value and what is allowed. Experiment configs are declared as :class:`Spec` models
(pydantic, strict: no silent coercion of ``"3"`` to 3 or ``True`` to 1) and validated by
:func:`validate_config`, which turns pydantic's report into one readable
:class:`ConfigError` naming every bad key.
"""

from __future__ import annotations

import numbers
from typing import Annotated, Any, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo


# --------------------------------------------------------------------------- arguments


def check_probability(value: object, name: str = "p") -> float:
    """Return ``value`` as a float if it is a probability in [0, 1], else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number in [0, 1], got {value!r} ({type(value).__name__})")
    value = float(value)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return value


def check_choice(value: object, allowed, name: str):
    """Return ``value`` if it is one of ``allowed``, else raise ``ValueError`` listing them."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` if it is an int >= 1 (not a bool), else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- configs


class UserError(Exception):
    """A mistake of the user's or a state of their files, whose message says what is wrong and how to mend it.

    The command line prints the message alone; a notebook (IPython's ``_render_traceback_``) shows it in one
    line instead of a traceback through the library's internals.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class ConfigError(UserError, ValueError):
    """An experiment config with unknown keys or values of the wrong type or range."""


def _device(value: str) -> str:
    import torch

    if value != "cpu" and not (value == "cuda" or (value.startswith("cuda:") and value[5:].isdigit())):
        raise ValueError(f"must be 'cpu', 'cuda' or 'cuda:<index>', got {value!r}")
    if value.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"{value!r} requested but CUDA is not available here; use 'cpu'")
    if value.startswith("cuda:") and int(value[5:]) >= (count := torch.cuda.device_count()):
        raise ValueError(f"{value!r} requested but this machine has {count} GPU{'s' if count != 1 else ''} "
                         f"(cuda:0 to cuda:{count - 1})")
    return value


def _increasing(values: list) -> list:
    if any(a >= b for a, b in zip(values, values[1:])):
        raise ValueError(f"must be strictly increasing, got {values!r}")
    return values


# Strict scalar types for config fields. A float field takes ints (1 is 1.0), never bools or strings.
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
DropProbability = Annotated[float, Field(ge=0, lt=1)]  # p = 1 would drop everything
Probability = Annotated[float, Field(ge=0, le=1)]
Fraction = Annotated[float, Field(gt=0, lt=1)]  # a point of a schedule, as a fraction of the run
Share = Annotated[float, Field(gt=0, le=1)]  # a part of a whole, the whole included
Fractions = Annotated[list[Fraction], AfterValidator(_increasing)]
DropProbabilities = Annotated[list[DropProbability], AfterValidator(_increasing)]  # a sweep of p: each once, rising
Widths = Annotated[list[PositiveInt], Field(min_length=1)]  # `hidden`: units per layer, always a list
IncreasingWidths = Annotated[Widths, AfterValidator(_increasing)]  # a sweep of widths: each once, rising
Device = Annotated[str, AfterValidator(_device)]


class SubSpec(BaseModel):
    """A nested part of a config (one arm's settings, a second task's): strict, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)

    @classmethod
    def with_defaults(cls, **defaults) -> type:
        """These settings with other defaults; descriptions and checks unchanged (a chapter's protocol on a
        shared one: ``class Config(CifarTraining.with_defaults(lr=0.05), Spec)``)."""
        fields = {k: (cls.model_fields[k].annotation, FieldInfo.merge_field_infos(cls.model_fields[k], default=v))
                  for k, v in defaults.items()}
        return create_model(cls.__name__, __base__=cls, **fields)


class Spec(SubSpec):
    """Base of every experiment's config spec: strict types, unknown keys rejected, ``device`` shared.

    A subclass declares one annotated field per config entry, with a default and a
    ``Field(description=...)`` saying what it means; profiles are dicts of the entries
    that differ from those defaults. Nested sub-configs are :class:`SubSpec` subclasses.
    """

    device: Device = Field("cpu", description="where to train: 'cpu', 'cuda' or 'cuda:<index>'")


def validate_config(spec: type[Spec], values: dict[str, Any], *, what: str) -> dict:
    """``values`` checked against ``spec``; the resolved config as a JSON-ready dict.

    Raises :class:`ConfigError` naming every bad key of ``what`` (e.g. ``"hinton2012 config"``)
    with its value and what is allowed, or listing the allowed keys for an unknown one.
    """
    try:
        return spec.model_validate(values).model_dump(mode="json")
    except ValidationError as error:
        raise ConfigError(_describe(error, spec, what)) from None


def _describe(error: ValidationError, spec: type[Spec], what: str) -> str:
    lines = []
    for e in error.errors(include_url=False):
        key = ".".join(str(part) for part in e["loc"]) or "(config)"
        if e["type"] == "extra_forbidden":
            allowed = _allowed(spec, e["loc"][:-1])
            lines.append(f"unknown key {key!r}; allowed: {allowed}")
        elif isinstance(e["input"], dict):  # a check across the keys of (a part of) the config: it names them
            message = e["msg"].removeprefix("Value error, ")
            lines.append(f"{key}: {message}" if e["loc"] else message)
        else:
            message = e["msg"].removeprefix("Value error, ")
            lines.append(f"{key} = {e['input']!r}: {message}")
    return f"bad {what}: " + "; ".join(lines)


def _allowed(spec: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of ``spec`` (or of the nested spec at ``loc``, through lists and dicts of specs), for the
    unknown-key message."""
    node: Any = spec
    for part in loc:
        if isinstance(part, str) and part in node.model_fields:  # a field: on into the spec it holds
            node = _spec_in(node.model_fields[part].annotation)
        # else a list's index or a dict's key: its items are the spec already reached
        if node is None:
            return sorted(spec.model_fields)
    return sorted(node.model_fields)


def _is_spec(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, BaseModel)


def _spec_in(annotation: Any) -> Any:
    """The spec an annotation holds: itself, or the spec inside ``list[...]``, ``dict[str, ...]``, ``X | None`` or
    ``Annotated[...]``; None if it holds none."""
    if _is_spec(annotation):
        return annotation
    for arg in reversed(get_args(annotation)):
        if (inner := _spec_in(arg)) is not None:
            return inner
    return None
