"""Arguments of richer types than JSON's — datetime, date, time, UUID, Decimal, Enum,
dataclasses, TypedDict and pydantic models — checked at enqueue, stored as JSON and converted
back before the job's code is called, all through pydantic (`offload[pydantic]`).

pydantic is imported only when a job type declares such a parameter, so `import offload` stays
light; where pydantic is not installed, such parameters take plain JSON values, unchecked and
unconverted, as they did before (docs/typing.md).
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import importlib.util
import sys
import types
import typing
import uuid
from typing import Any

from offload._errors import ConfigurationError, InvalidArgumentsError
from offload._text import step
from offload.jobs._payload import arg_path

_RICH = (datetime.date, datetime.time, datetime.timedelta, uuid.UUID, decimal.Decimal, enum.Enum)
EXTRA = "pip install 'offload[pydantic]'"


def pydantic_installed() -> bool:
    """Whether pydantic can be imported (without importing it)."""
    return "pydantic" in sys.modules or importlib.util.find_spec("pydantic") is not None


def is_rich(hint: Any) -> bool:
    """Whether an annotation names (anywhere within it) a type that JSON does not hold as is."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return False
    if origin is typing.Annotated:
        return is_rich(typing.get_args(hint)[0])
    if origin is not None or isinstance(hint, types.UnionType):
        return any(is_rich(h) for h in typing.get_args(hint))
    if isinstance(hint, type):
        if issubclass(hint, _RICH) or dataclasses.is_dataclass(hint) or typing.is_typeddict(hint):
            return True
        pydantic = sys.modules.get("pydantic")
        return pydantic is not None and issubclass(hint, pydantic.BaseModel)
    return False


class Converter:
    """Turns one parameter's values to JSON (at enqueue) and back (before the call)."""

    def __init__(self, job: str, param: str, hint: Any) -> None:
        self.job = job
        self.param = param
        self.hint = hint
        if not pydantic_installed():
            raise ConfigurationError(
                f"job {job!r}: parameter {param!r} is annotated {_name(hint)}, which offload "
                f"stores as JSON and converts back through pydantic; install it: {EXTRA}"
            )
        import pydantic  # noqa: PLC0415 - only job types with such parameters pay for it

        try:
            self.adapter: Any = pydantic.TypeAdapter(hint)
        except pydantic.PydanticUserError as exc:
            raise ConfigurationError(
                f"job {job!r}: parameter {param!r} is annotated {_name(hint)}, which pydantic "
                f"cannot convert: {exc.message}"
            ) from None
        self.error = pydantic.ValidationError

    def dump(self, value: Any, where: str) -> Any:
        """The JSON form of a value given at enqueue (an object, or its JSON form already)."""
        try:
            return self.adapter.dump_python(self.adapter.validate_python(value), mode="json")
        except self.error as exc:
            raise InvalidArgumentsError(
                f"{where} should be {_name(self.hint)}, got {type(value).__name__} "
                f"{_short(value)}: {_first(exc)}",
                self.param,
                _path(self.param, exc),
            ) from None

    def load(self, value: Any) -> Any:
        """The object a stored JSON value stands for, before the job's code is called."""
        try:
            return self.adapter.validate_python(value)
        except self.error as exc:
            raise InvalidArgumentsError(
                f"the stored argument {self.param!r} of {self.job}() is not a "
                f"{_name(self.hint)}: {_first(exc)}",
                self.param,
                _path(self.param, exc),
            ) from None


def _first(exc: Any) -> str:
    """The first problem pydantic found, with where in the value it is."""
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ()))
    return f"{error['msg']}" + (f" (at {where})" if where else "")


def _path(param: str, exc: Any) -> str:
    """The path of the first problem, the way rules name fields: `args.point.x`."""
    path = arg_path(param)
    for part in exc.errors()[0].get("loc", ()):
        path = f"{path}[{part}]" if isinstance(part, int) else step(path, str(part))
    return path


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
