"""Binds enqueue arguments to a job function's signature and rebuilds the call at run time.

Arguments are stored by parameter name, so a job enqueued over HTTP as a JSON object and one
enqueued from Python look the same in the store. Simple annotations (int, str, float, bool,
list, dict, Optional and unions of those, list[X], dict[str, X]) are checked at enqueue; richer
ones (datetime, UUID, Decimal, Enum, dataclasses, TypedDict, pydantic models) are checked and
stored as JSON at enqueue, and converted back before the call, through pydantic (`_rich.py`).
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from offload._errors import ConfigurationError, InvalidArgumentsError, PayloadDecodeError
from offload.jobs import _rich
from offload.jobs._payload import MAX_INT, MIN_INT, arg_path, check_json
from offload.jobs._rich import Converter, is_rich

_SIMPLE: dict[Any, tuple[type, ...]] = {
    int: (int,),
    float: (int, float),
    str: (str,),
    bool: (bool,),
    list: (list, tuple),
    dict: (dict,),
    type(None): (type(None),),
}


class Signature:
    """A job function's parameters and the annotations offload can check."""

    def __init__(self, func: Callable[..., Any], name: str) -> None:
        self.name = name
        try:
            self.sig = inspect.signature(func)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"cannot read the signature of job {name!r}: {exc}") from exc
        try:
            self.hints = typing.get_type_hints(func)
        except Exception:  # noqa: BLE001 - unresolvable annotations are simply not checked
            self.hints = {}
        self.hints.pop("return", None)
        params = list(self.sig.parameters.values())
        self.required = [
            p.name
            for p in params
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        # The fast binder (`_bind_plain`) of signatures without *args or **kwargs; anything it
        # does not accept outright goes to inspect's binder, which words the error.
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        self._plain = all(p.kind in positional or p.kind in keyword for p in params)
        self._names = tuple(p.name for p in params)
        self._positional = tuple(p.name for p in params if p.kind in positional)
        self._keyword = frozenset(p.name for p in params if p.kind in keyword)
        self._required = frozenset(self.required)
        self._var_keyword = next((p.name for p in params if p.kind is p.VAR_KEYWORD), None)
        needed_kw = any(p.kind is p.KEYWORD_ONLY and p.name in self._required for p in params)
        needed_pos = sum(1 for p in params if p.kind in positional and p.name in self._required)
        self._min_positional = len(self._positional) + 1 if needed_kw else needed_pos
        # Per parameter, the exact types its annotation accepts without a closer look (absent:
        # no annotation to check; None: the annotation needs the full check of `_conforms`).
        self._exact: dict[str, frozenset[type] | None] = {}
        for p in params:
            hint = self.hints.get(p.name)
            if hint is not None and hint is not Any and hint is not object:
                self._exact[p.name] = _exact_types(hint)
        # Parameters of types JSON does not hold as is, converted by pydantic both ways; without
        # pydantic they are taken as plain JSON values, unconverted, as before it was supported.
        self._rich = {
            p.name: Converter(name, p.name, self.hints[p.name])
            for p in params
            if p.name in self.hints and is_rich(self.hints[p.name]) and _rich.pydantic_installed()
        }

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Arguments by parameter name, checked to be JSON and to fit the annotations."""
        arguments = self._bind_plain(args, kwargs) if self._plain else None
        if arguments is None:
            try:
                bound = self.sig.bind(*args, **kwargs)
            except TypeError as exc:
                raise InvalidArgumentsError(f"{self.name}(): {exc}") from None
            arguments = dict(bound.arguments)
        return self.check(arguments)

    def _bind_plain(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """What `inspect.Signature.bind` gives for a call it accepts (the given arguments in
        parameter order), or None when the call needs its closer look (or its error)."""
        n = len(args)
        if n > len(self._positional):
            return None
        out = dict(zip(self._positional, args, strict=False))
        if not kwargs:
            return out if n >= self._min_positional else None
        keyword = self._keyword
        for key in kwargs:
            if key in out or key not in keyword:
                return None
        required = self._required
        for name in self._names[n:]:
            if name in kwargs:
                out[name] = kwargs[name]
            elif name in required:
                return None
        return out

    def bind_named(self, named: dict[str, Any]) -> dict[str, Any]:
        """Check arguments already given by name (from HTTP or the CLI)."""
        params = self.sig.parameters
        var_kw = next((p.name for p in params.values() if p.kind is p.VAR_KEYWORD), None)
        unknown = [k for k in named if k not in params and var_kw is None]
        if unknown:
            raise InvalidArgumentsError(
                f"{self.name}() got unknown argument {unknown[0]!r}; it takes "
                f"{', '.join(params) or 'no arguments'}",
                unknown[0],
            )
        missing = [k for k in self.required if k not in named]
        if missing:
            raise InvalidArgumentsError(
                f"{self.name}() is missing required argument {missing[0]!r}", missing[0]
            )
        if var_kw is not None:
            extra = {k: v for k, v in named.items() if k not in params}
            named = {k: v for k, v in named.items() if k in params}
            if extra:
                named[var_kw] = {**named.get(var_kw, {}), **extra}
        return self.check(named)

    def check(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments as stored (tuples become lists), or the error naming the first bad one.

        Plain scalars of the exact types an annotation names are settled here at once; every
        other value goes through `check_json` and `_conforms`."""
        exact = self._exact
        for key, value in arguments.items():
            t = type(value)
            if t is int:
                if not MIN_INT <= value <= MAX_INT:
                    break
            elif t is float:
                if value - value != 0.0:  # NaN or infinity
                    break
            elif t is not str and t is not bool and value is not None:
                break
            if key in exact:
                types = exact[key]
                if types is None or t not in types:
                    break
        else:
            return dict(arguments)
        return self._check_closely(arguments)

    def _check_closely(self, arguments: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in arguments.items():
            where = f"argument {key!r} of {self.name}()"
            param = self.sig.parameters.get(key)
            rich = self._rich.get(key)
            if rich is not None and param is not None:
                value = _each(param, value, functools.partial(rich.dump, where=where))
            value = check_json(value, where, path=arg_path(key))
            hint = self.hints.get(key)
            if hint is not None and param is not None and rich is None:
                if param.kind is param.VAR_POSITIONAL:
                    values = value
                elif param.kind is param.VAR_KEYWORD:
                    values = list(value.values())
                else:
                    values = [value]
                for v in values:
                    if not _conforms(v, hint):
                        raise InvalidArgumentsError(
                            f"{where} should be {_hint_name(hint)}, got {type(v).__name__} "
                            f"{_short(v)}",
                            key,
                        )
            out[key] = value
        return out

    def call_args(self, arguments: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """Positional and keyword arguments to call the function with stored arguments.

        Stored arguments that do not fit this signature raise before the function runs (see
        `mismatch`); arguments that are not an object raise `PayloadDecodeError`."""
        if not isinstance(arguments, dict):
            raise PayloadDecodeError(
                f"the stored arguments of {self.name} are not an object of name: value "
                f"(got a {type(arguments).__name__})"
            )
        if self._rich:
            arguments = self._load(arguments)
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        positional = True  # stays true while every earlier positional parameter was given
        used = 0
        for param in self.sig.parameters.values():
            present = param.name in arguments
            if not present:
                if param.name in self._required:
                    raise self.mismatch(arguments)
                if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                    positional = False
                continue
            used += 1
            value: Any = arguments[param.name]
            if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
                if positional:
                    args.append(value)
                else:
                    kwargs[param.name] = value
            elif param.kind is param.VAR_POSITIONAL:
                args.extend(value)
            elif param.kind is param.VAR_KEYWORD:
                kwargs.update(value)
            else:
                kwargs[param.name] = value
        if used < len(arguments):  # names this signature has no parameter for
            if self._var_keyword is None:
                raise self.mismatch(arguments)
            params = self.sig.parameters
            kwargs.update((k, v) for k, v in arguments.items() if k not in params)
        return args, kwargs

    def _load(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Stored arguments with those of rich types converted back from JSON."""
        out = dict(arguments)
        params = self.sig.parameters
        for key, rich in self._rich.items():
            if key in out:
                out[key] = _each(params[key], out[key], rich.load)
        return out

    def mismatch(self, arguments: dict[str, Any]) -> InvalidArgumentsError:
        """The error for stored arguments that do not fit this signature: the job was enqueued
        by a producer of another version of its job type (a newer one that adds an argument
        this worker's function does not take, or an older one that leaves out an argument it
        requires). The one place that decides what such a job meets; today the attempt fails
        with this error, naming the argument, and is retried with the job type's backoff, so
        that the job runs once a worker whose version fits claims it (docs/stored-data.md)."""
        params = self.sig.parameters
        unknown = [k for k in arguments if k not in params]
        if unknown and self._var_keyword is None:
            key = unknown[0]
            takes = ", ".join(params) or "no arguments"
            return InvalidArgumentsError(
                f"{self.name}() got argument {key!r}, which this worker's version of it does "
                f"not take (it takes {takes}): a producer of another version enqueued it; it "
                f"is retried, and runs once a worker whose version takes {key!r} claims it",
                key,
            )
        missing = [k for k in self.required if k not in arguments]
        key = missing[0] if missing else "?"
        return InvalidArgumentsError(
            f"{self.name}() is missing required argument {key!r}: a producer of another "
            "version enqueued it without; it is retried, and runs once a worker whose "
            f"version does not require {key!r} claims it (give a new argument a default, so "
            "that jobs enqueued before it existed still run)",
            key,
        )


def _each(param: inspect.Parameter, value: Any, convert: Callable[[Any], Any]) -> Any:
    """`convert` applied to a parameter's value, or to each of the values of *args or
    **kwargs (left as they are when they are not a tuple, list or dict: the JSON check says
    what is wrong with them)."""
    if param.kind is param.VAR_POSITIONAL and isinstance(value, (list, tuple)):
        return [convert(v) for v in value]
    if param.kind is param.VAR_KEYWORD and isinstance(value, dict):
        return {k: convert(v) for k, v in value.items()}
    return value if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) else convert(value)


def _exact_types(hint: Any) -> frozenset[type] | None:
    """The exact types that conform to `hint` whatever their value (bool is not an int here),
    or None when conforming depends on more than a scalar's type."""
    if hint in _SIMPLE:
        return frozenset(t for t in _SIMPLE[hint] if t not in (list, tuple, dict))
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        out: set[type] = set()
        for h in typing.get_args(hint):
            one = _exact_types(h)
            if one is None:
                return None
            out |= one
        return frozenset(out)
    return None


def _conforms(value: Any, hint: Any) -> bool:
    if hint is Any or hint is object:
        return True
    if hint in _SIMPLE:
        if hint is int and isinstance(value, bool):
            return False
        if hint is float and isinstance(value, bool):
            return False
        return isinstance(value, _SIMPLE[hint])
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, h) for h in typing.get_args(hint))
    if origin in (list, tuple, set, frozenset) or origin is typing.Sequence:
        if not isinstance(value, list):
            return False
        inner = typing.get_args(hint)
        if origin is list and len(inner) == 1:
            return all(_conforms(v, inner[0]) for v in value)
        return True
    if origin is dict or origin is typing.Mapping:
        if not isinstance(value, dict):
            return False
        inner = typing.get_args(hint)
        if len(inner) == 2:
            return all(_conforms(v, inner[1]) for v in value.values())
        return True
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    return True  # a type offload does not know how to check from JSON


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
