"""The wire codec: parsed JSON documents to model dataclasses and back, no I/O.

A model is a subclass of :class:`WireModel`, a frozen dataclass whose last field ``extra``
keeps the keys it does not know. On first use each class gets a :class:`Plan`, read from its
field types, that :func:`decode` walks in one loop. A decoded object keeps its document, so
``to_wire()`` gives back exactly that document; a model built by hand is encoded from its
fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from datetime import datetime, timedelta
from enum import Enum
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    NamedTuple,
    Optional,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
)

from ._exceptions import DecodeError

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**kwargs: Any) -> Callable[[Any], Any]:
        return lambda decorator: decorator


_M = TypeVar("_M", bound="WireModel")
#: Where a value is, built only when an error needs it: the model's name, or the path of the
#: parent and a key (``str``) or list index (``int``).
Path = Union[str, tuple[Any, Union[str, int]]]
_Check = Callable[[Any], bool]

_WIRE = "_wire"  # where a decoded object keeps its document (not a field: not in eq or repr)
# How a field is decoded (the ``kind`` of a plan row; ``None``: the value passes through).
_ENUM, _TIME, _CHECK, _BY, _LAZY = "enum", "time", "check", "by", "lazy"
_MODEL, _LIST, _ONE_OR_LIST = "model", "list", "one or list"  # ``how``: the model's plan
_new = object.__new__
_set = object.__setattr__


def wire(name: str) -> dict[str, Any]:
    """Field metadata: the wire name of a field that is not the camelCase of its name."""
    return {"wire": name}


def by(selector: str, models: Mapping[str, type], loose: frozenset[str]) -> dict[str, Any]:
    """Field metadata: the field's model is ``models[<value of the earlier field selector>]``;
    without one, or for a ``loose`` selector value when the field is no object, it stays as
    it came."""
    return {"by": (selector, models, loose)}


def object_check(cls: type) -> Optional[_Check]:
    """The check that a value is an object that cannot fail to decode as ``cls``, for a model
    without required fields whose fields are scalars, enums, timestamps, checked dicts or
    lists, or models of such fields (one or a list); else ``None``."""
    sub = plan(cls)
    if sub.required:
        return None
    checks: dict[str, _Check] = {}
    for key, (_, kind, how) in sub.fields.items():
        if kind is _CHECK:
            checks[key] = _is_a(how)
        elif kind is _LAZY:
            checks[key] = how.check
        elif kind is _ONE_OR_LIST and object_check(how.cls) is _is_object:
            checks[key] = _is_objects
        elif kind not in (None, _ENUM, _TIME):
            return None
    if not checks:
        return _is_object

    def check(value: Any) -> bool:
        if value.__class__ is not dict:
            return False
        for key, item in value.items():
            ok = checks.get(key)
            if ok is not None and item is not None and not ok(item):
                return False
        return True

    return check


def _is_a(shape: type) -> _Check:
    return lambda value: isinstance(value, shape)


def _is_object(value: Any) -> bool:
    return value.__class__ is dict  # what json.loads makes; another mapping is decoded at once


def _is_objects(value: Any) -> bool:
    kind = value.__class__
    return kind is dict or (kind is list and all(item.__class__ is dict for item in value))


class Plan(NamedTuple):
    """How one model class is decoded and encoded, read from its fields once."""

    cls: type
    name: str
    fields: dict[str, tuple[str, Optional[str], Any]]  # wire name -> attr, kind, how
    required: tuple[str, ...]  # the wire names of the fields without a default
    chosen: tuple[tuple[str, str, Any], ...]  # (attr, wire, how) of the ``by()`` fields
    encoded: tuple[tuple[str, str], ...]  # (attr, wire) of the fields but extra, in order


_PLANS: dict[type, Plan] = {}


def plan(cls: type) -> Plan:
    """The plan of a model class, built on first use (two threads may both build it; equal)."""
    found = _PLANS.get(cls)
    if found is None:
        found = _PLANS[cls] = _build_plan(cls)
    return found


def _build_plan(cls: type) -> Plan:
    index: dict[str, tuple[str, Optional[str], Any]] = {}
    required, chosen = [], []
    found = [f for f in fields(cls) if f.name != "extra"]
    for f in found:
        key = _wire_name(f)
        kind, how = (_BY, f.metadata["by"]) if "by" in f.metadata else _step(f.type)
        lazy = cls.__dict__.get(f.name)
        if isinstance(lazy, _Lazy):
            kind, how = _LAZY, lazy
        elif kind in (_MODEL, _LIST, _ONE_OR_LIST):
            how = plan(how)  # models only refer to models declared before them: no cycles
        elif kind is _BY:
            chosen.append((f.name, key, how))
        index[key] = (f.name, kind, how)
        if f.default is MISSING and f.default_factory is MISSING:
            required.append(key)
    return Plan(
        cls,
        cls.__name__,
        index,
        tuple(required),
        tuple(chosen),
        tuple((f.name, _wire_name(f)) for f in found),
    )


def _wire_name(f: Field[Any]) -> str:
    # dataclasses-json's LetterCase.CAMEL gives the same names; importing it costs 16 ms
    # (docs/performance.md, import table), too much for the cold start of a CLI or a task.
    head, *rest = f.name.split("_")
    return cast(str, f.metadata.get("wire") or head + "".join(w.capitalize() for w in rest))


def _step(tp: Any) -> tuple[Optional[str], Any]:
    """How a field of type ``tp`` is decoded: its kind (``None``: passed through) and how."""
    options = [a for a in get_args(tp) if a is not type(None)] if get_origin(tp) is Union else [tp]
    if datetime in options:
        return _TIME, None
    models = [a for a in options if _is_model(a)]
    lists = [get_args(a)[0] for a in options if get_origin(a) is list]
    if models and lists and lists[0] is models[0]:
        return _ONE_OR_LIST, models[0]
    if len(options) == 1:
        if models:
            return _MODEL, models[0]
        if lists:
            return (_LIST, lists[0]) if _is_model(lists[0]) else (_CHECK, list)
        if get_origin(options[0]) is dict:
            return _CHECK, dict
    enums = [a for a in options if isinstance(a, type) and issubclass(a, Enum)]
    return (_ENUM, {m.value: m for m in enums[0]}) if enums else (None, None)


def _is_model(tp: Any) -> bool:
    # get_origin: on Python 3.9 ``dict[str, Any]`` passes isinstance(..., type).
    return isinstance(tp, type) and get_origin(tp) is None and issubclass(tp, WireModel)


# -- decoding ----------------------------------------------------------------------------------


def decode(spec: Plan, document: Any, path: Path) -> Any:
    """Decode ``document`` into ``spec``'s class; raises :class:`DecodeError` (with ``path``)."""
    cls, name, index, required, chosen, _ = spec
    if document.__class__ is not dict:
        if not isinstance(document, Mapping):
            raise shape_error(f"an object ({name})", path, document)
        document = dict(document)
    # One loop over the document into the object's __dict__ (a field the document lacks reads
    # as the class default, None): a quarter faster per list item, job and event envelope than
    # a loop per kind of field, 10% faster than a loop over the fields.
    attrs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in document.items():
        row = index.get(key)
        if row is None:
            extra[key] = value
            continue
        attr, kind, how = row
        if value is None or kind is None or kind is _BY:
            attrs[attr] = value  # _BY: decoded below, once the field it depends on is
        elif kind is _ENUM:
            attrs[attr] = how.get(value, value) if value.__class__ is str else value
        elif kind is _TIME:
            attrs[attr] = parse_time(value) if value.__class__ is str else value
        elif kind is _MODEL:
            attrs[attr] = decode(how, value, (path, key))
        elif kind is _LAZY:
            if not how.check(value):  # decoding may fail: decoded now, so that it fails now
                attrs[attr] = decode(plan(how.sub), value, (path, key))
        elif kind is _CHECK:
            if not isinstance(value, how):
                raise shape_error("a list" if how is list else "an object", (path, key), value)
            attrs[attr] = value
        elif value.__class__ is list:  # _LIST, _ONE_OR_LIST
            attrs[attr] = [decode(how, item, ((path, key), i)) for i, item in enumerate(value)]
        elif kind is _ONE_OR_LIST:
            attrs[attr] = decode(how, value, (path, key))
        else:
            raise shape_error(f"a list of {how.name}", (path, key), value)
    for key in required:
        if document.get(key) is None:
            raise shape_error(f"a value for {key!r}", path, None, missing=True)
    for attr, key, how in chosen:
        value = attrs.get(attr)
        if value is not None:
            attrs[attr] = decode_by(how, attrs.get(how[0]), value, (path, key))
    attrs["extra"] = extra
    attrs[_WIRE] = document
    obj: Any = _new(cls)
    _set(obj, "__dict__", attrs)
    return obj


class _Lazy:
    """A model field decoded from the object's document on first access, then kept.

    Only for fields whose check said at decode time that decoding cannot fail (links, function,
    the queue status, ...): they were half the decoding cost of a list item or a job event
    (bench/profile_events.py), and are seldom read.
    """

    def __init__(self, name: str, key: str, check: _Check, sub: type) -> None:
        self.name, self.key, self.check, self.sub = name, key, check, sub

    def __get__(self, obj: Any, owner: Optional[type] = None) -> Any:
        if obj is None:
            return None  # the dataclass default, read on the class
        attrs = obj.__dict__
        if self.name not in attrs:
            raw = attrs[_WIRE].get(self.key)
            path = (type(obj).__name__, self.key)
            attrs[self.name] = None if raw is None else decode(plan(self.sub), raw, path)
        return attrs[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.name] = value  # only ``__init__`` gets here: the models are frozen


def decode_by(
    how: tuple[str, Mapping[str, type], frozenset[str]], selected: Any, value: Any, path: Path
) -> Any:
    """Decode a field declared with :func:`by`, given the value of its selector."""
    _, models, loose = how
    sub = models.get(selected) if isinstance(selected, str) else None
    if sub is None or (selected in loose and not isinstance(value, Mapping)):
        return value
    return decode(_PLANS.get(sub) or plan(sub), value, path)


def shape_error(expected: str, path: Path, value: Any, *, missing: bool = False) -> DecodeError:
    """The :class:`DecodeError` for a value of the wrong shape (or a missing one) at ``path``."""
    parts: list[str] = []
    root: Any = path
    while isinstance(root, tuple):
        root, key = root
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    rest = "".join(reversed(parts)).lstrip(".")
    text = repr(value)
    got = f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"
    if missing:
        got = "nothing (the key is missing or null)"
    return DecodeError(
        f"the document does not have the shape of {root}: expected {expected} at "
        f"{rest or 'the top level'}, got {got}",
        model=root,
        path=rest,
    )


# -- timestamps --------------------------------------------------------------------------------

_ISO_TIME = re.compile(
    r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d)?)(?:\.(\d{1,6})\d*)?(Z|[+-]\d\d:?\d\d)", re.A
)


def parse_time(text: str) -> Union[datetime, str]:
    """An ISO-8601 date-time with a UTC offset (``2024-05-02T09:14:03.512Z``) as an aware
    ``datetime``; any other text (no offset, not a date-time) is returned unchanged."""
    value: Optional[datetime]
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = _parse_time_compat(text)
    return text if value is None or value.tzinfo is None else value


def _parse_time_compat(text: str) -> Optional[datetime]:
    # Python < 3.11: fromisoformat takes no "Z", and 3 or 6 digits of a fraction only.
    match = _ISO_TIME.fullmatch(text)
    if match is None:
        return None
    head, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    try:
        return datetime.fromisoformat(f"{head}.{(fraction or '').ljust(6, '0')}{zone}")
    except ValueError:  # out of range: month 13, hour 25
        return None


def format_time(value: datetime) -> str:
    """The wire text of a ``datetime`` built by hand: ISO-8601, ``Z`` for UTC, milliseconds
    unless the microseconds need more."""
    text = value.isoformat(timespec="milliseconds" if value.microsecond % 1000 == 0 else "auto")
    if text.endswith("+00:00") and value.utcoffset() == timedelta(0):
        text = text[:-6] + "Z"
    return text


# -- encoding and the base class -------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, WireModel):
        return value.to_wire()
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return format_time(value) if isinstance(value, datetime) else value


def _copy(value: Any) -> Any:
    # A document of json.loads, copied so that a caller's changes stay out of the model.
    if value.__class__ is dict:
        return {key: _copy(item) for key, item in value.items()}
    return [_copy(item) for item in value] if value.__class__ is list else value


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
class WireModel:
    """Base of every wire model: ``from_wire``/``to_wire`` and the dataclasses-json API.

    A subclass is a frozen dataclass with a last field ``extra`` for unknown keys. Its
    ``__eq__``, ``__repr__`` and ``__hash__`` are this class's, not generated per class: 0.42 ->
    0.26 ms per class, a third of the import time of the models.
    """

    extra: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__annotations__" not in cls.__dict__:  # Python 3.9 would give the base's
            cls.__annotations__ = {}
        cls.__annotations__["extra"] = "dict[str, Any]"
        cls.extra = field(default_factory=dict, repr=False, compare=False)
        dataclass(frozen=True, eq=False, repr=False)(cls)
        for f in fields(cast(Any, cls)):
            kind, sub = _step(f.type)
            check = object_check(sub) if kind is _MODEL and "by" not in f.metadata else None
            if check is not None:
                setattr(cls, f.name, _Lazy(f.name, _wire_name(f), check, sub))

    @classmethod
    def from_wire(cls: type[_M], data: Mapping[str, Any]) -> _M:
        """Decode a parsed JSON object; raises :class:`DecodeError` when its shape is wrong."""
        return cast(_M, decode(_PLANS.get(cls) or plan(cls), data, cls.__name__))

    def to_wire(self) -> dict[str, Any]:
        """The wire document: the one decoded (a copy), or the fields (``None`` left out) and
        ``extra`` of a model built by hand."""
        document = self.__dict__.get(_WIRE)
        if document is not None:
            return cast(dict[str, Any], _copy(document))
        out = {key: _encode(getattr(self, attr)) for attr, key in plan(type(self)).encoded}
        return {**{key: value for key, value in out.items() if value is not None}, **self.extra}

    @classmethod
    def from_dict(cls: type[_M], kvs: Any, *, infer_missing: bool = False) -> _M:
        """Same as :meth:`from_wire` (``infer_missing`` is implied: missing fields are ``None``)."""
        return cls.from_wire(kvs)

    def to_dict(self, encode_json: bool = False) -> dict[str, Any]:
        """Same as :meth:`to_wire`."""
        return self.to_wire()

    @classmethod
    def from_json(cls: type[_M], s: Union[str, bytes], **kwargs: Any) -> _M:
        """Decode JSON text (``kwargs`` go to ``json.loads``, as in dataclasses-json)."""
        kwargs.pop("infer_missing", None)
        return cls.from_wire(json.loads(s, **kwargs))

    def to_json(self, **kwargs: Any) -> str:
        """The wire document as JSON text, by dataclasses-json's ``to_json`` (``kwargs`` go to
        ``json.dumps``)."""
        from dataclasses_json import DataClassJsonMixin

        return DataClassJsonMixin.to_json(cast(DataClassJsonMixin, self), **kwargs)

    @classmethod
    def schema(cls, *, many: bool = False, **kwargs: Any) -> Any:
        """A marshmallow schema whose ``load``/``dump`` are these codecs (wrong shapes raise
        ``marshmallow.ValidationError``), for code that expects dataclasses-json's API."""
        from ._schema import wire_schema

        return wire_schema(cls, many=many, **kwargs)

    # Like the dataclass methods, over the fields but ``extra``.
    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _values(self) == _values(other)

    def __hash__(self) -> int:
        return hash(_values(self))

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n, _ in plan(type(self)).encoded)
        return f"{type(self).__qualname__}({shown})"


def _values(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, attr) for attr, _ in plan(type(obj)).encoded)
