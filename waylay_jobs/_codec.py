"""The wire codec: parsed JSON documents to model dataclasses and back, no I/O.

A model subclasses :class:`WireModel`, which makes it a frozen dataclass whose field ``extra``
keeps the keys it does not know. On first use each class gets a :class:`Plan`, read from its
field types, that :func:`decode` walks in one loop. A decoded object keeps its document, so
``to_wire()`` gives that document back exactly; a model built by hand is encoded from its fields.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional, TypeVar, Union, cast

from ._exceptions import DecodeError

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**kwargs: Any) -> Callable[[Any], Any]:
        return lambda decorator: decorator


_M = TypeVar("_M", bound="WireModel")
_T = TypeVar("_T")
#: Where a value is, built only when an error needs it: the model's name, or the path of the
#: parent and a key (``str``) or list index (``int``).
Path = Union[str, tuple[Any, Union[str, int]]]
Check = Callable[[Any], bool]
WIRE = "_wire"  # where a decoded object keeps its document (not a field: not in eq or repr)
# How a field is decoded, the ``kind`` of a plan row (``None``: the value passes through).
_ENUM, _TIME, _TYPE, _BY = "enum", "time", "type", "by"
_MODEL, _LAZY, _LIST, _ONE_OR_LIST = "model", "lazy", "list", "one or list"  # how: a Plan


def by(selector: str, models: Mapping[str, type], loose: frozenset[str]) -> dict[str, Any]:
    """Field metadata: the field's model is ``models[<value of the field selector>]``; without
    one, or for a ``loose`` selector value when the field is no object, it stays as it came
    (decoded after the other fields, whatever the order of the document)."""
    return {"by": (selector, models, loose)}


def by_model(how: tuple[str, Mapping[str, type], frozenset[str]], selected: Any, value: Any) -> Any:
    """The model a :func:`by` field's ``value`` decodes into (``None``: it stays as it came)."""
    _, models, loose = how  # a loose type may send no object
    if (
        value is None
        or not isinstance(selected, str)
        or (selected in loose and not isinstance(value, Mapping))
    ):
        return None
    return models.get(selected)


class Plan(NamedTuple):
    """How one model class is decoded and encoded, read from its fields once."""

    cls: type
    rows: dict[str, tuple[str, Optional[str], Any]]  # wire name -> (attribute, kind, how)
    required: tuple[str, ...]  # the wire names of the fields without a default
    chosen: tuple[tuple[str, str, Any], ...]  # (attribute, wire name, how) of the by() fields
    encoded: tuple[tuple[str, str], ...]  # (attribute, wire name) of the fields but extra
    check: Optional[Check]  # passes only objects that decode without error; None: no cheap one


_PLANS: dict[type, Plan] = {}


def plan(cls: type) -> Plan:
    """The plan of a model class, built on first use (two threads may both build it; equal)."""
    found = _PLANS.get(cls)
    if found is None:
        found = _PLANS[cls] = _build_plan(cls)
    return found


def _build_plan(cls: type) -> Plan:
    rows: dict[str, tuple[str, Optional[str], Any]] = {}
    required, chosen, encoded = [], [], []
    for f in fields(cls):
        if f.name == "extra":
            continue
        # The camelCase of the name, unless metadata {"wire": ...} names the key. It is what
        # dataclasses-json's LetterCase.CAMEL gives, but importing that costs 16 ms
        # (docs/performance.md, import table), too much for the cold start of a CLI or a task.
        head, *rest = f.name.split("_")
        key = f.metadata.get("wire") or head + "".join(word.capitalize() for word in rest)
        kind, how = (_BY, f.metadata["by"]) if "by" in f.metadata else _kind(f.type)
        if kind in (_MODEL, _LIST, _ONE_OR_LIST):
            how = plan(how)  # models only refer to models declared before them: no cycles
            if kind is _MODEL and how.check is not None:
                kind = _LAZY
                setattr(cls, f.name, _Lazy(f.name, key, how))
        elif kind is _BY:
            chosen.append((f.name, key, how))
        rows[key] = (f.name, kind, how)
        encoded.append((f.name, key))
        if f.default is MISSING and f.default_factory is MISSING:
            required.append(key)
    return Plan(cls, rows, tuple(required), tuple(chosen), tuple(encoded), _check(rows, required))


def _kind(tp: Any) -> tuple[Optional[str], Any]:
    """How a field of type ``tp`` is decoded: its kind, and its model, enum values or type."""
    options = [a for a in _args(tp) if a is not type(None)] if _origin(tp) is Union else [tp]
    if datetime in options:
        return _TIME, None
    models = [a for a in options if _is_model(a)]
    lists = [_args(a)[0] for a in options if _origin(a) is list]
    if models and lists and lists[0] is models[0]:
        return _ONE_OR_LIST, models[0]
    if len(options) == 1:
        if models:
            return _MODEL, models[0]
        if lists:
            return (_LIST, lists[0]) if _is_model(lists[0]) else (_TYPE, list)
        if _origin(options[0]) is dict:
            return _TYPE, dict
    enums = [a for a in options if isinstance(a, type) and issubclass(a, Enum)]
    return (_ENUM, {m.value: m for m in enums[0]}) if enums else (None, None)


_origin, _args = typing.get_origin, typing.get_args


def _is_model(tp: Any) -> bool:
    # get_origin: on Python 3.9 ``dict[str, Any]`` passes isinstance(..., type).
    return isinstance(tp, type) and _origin(tp) is None and issubclass(tp, WireModel)


def _check(rows: dict[str, tuple[str, Optional[str], Any]], required: list[str]) -> Optional[Check]:
    # Only for a model without required fields whose fields are scalars, enums, timestamps,
    # lists or objects, and models (one or a list) with a check of their own.
    if required:
        return None
    checks: dict[str, Check] = {}
    for key, (_, kind, how) in rows.items():
        if kind is _TYPE:
            checks[key] = list.__instancecheck__ if how is list else dict.__instancecheck__
        elif kind is _LAZY:
            checks[key] = how.check
        elif kind is _ONE_OR_LIST and how.check is is_object:
            checks[key] = _is_objects
        elif kind not in (None, _ENUM, _TIME):
            return None
    if not checks:
        return is_object

    def check(value: Any) -> bool:
        if value.__class__ is not dict:
            return False
        for key, item in value.items():
            ok = checks.get(key)
            if ok is not None and item is not None and not ok(item):
                return False
        return True

    return check


def is_object(value: Any) -> bool:
    """Whether ``value`` is what ``json.loads`` makes of an object (a check of a lazy field:
    another mapping is decoded at once)."""
    return value.__class__ is dict


def _is_objects(value: Any) -> bool:
    kind = value.__class__
    return kind is dict or (kind is list and all(item.__class__ is dict for item in value))


# -- decoding ----------------------------------------------------------------------------------


def decode(spec: Plan, document: Any, path: Path, selected: Any = None) -> Any:
    """Decode ``document`` into ``spec``'s class; raises :class:`DecodeError` (with ``path``).

    ``selected``: the value of a :func:`by` selector that is not a field of the model itself.
    """
    cls, rows, required, chosen, _, _ = spec
    if document.__class__ is not dict:
        if not isinstance(document, Mapping):
            raise shape_error(f"an object ({cls.__name__})", path, document)
        document = dict(document)
    # One loop over the document into the object's __dict__ (a field the document lacks reads
    # as the class default, None): a quarter faster per list item, job and event envelope than
    # a loop per kind of field, 10% faster than a loop over the fields.
    attrs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in document.items():
        row = rows.get(key)
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
        elif kind is _LAZY:
            if not how.check(value):  # decoding may fail: decoded now, so that it fails now
                attrs[attr] = decode(how, value, (path, key))
        elif kind is _MODEL:
            attrs[attr] = decode(how, value, (path, key))
        elif kind is _TYPE:
            if not isinstance(value, how):
                raise shape_error("a list" if how is list else "an object", (path, key), value)
            attrs[attr] = value
        elif value.__class__ is list:  # _LIST, _ONE_OR_LIST
            attrs[attr] = [decode(how, item, ((path, key), i)) for i, item in enumerate(value)]
        elif kind is _ONE_OR_LIST:
            attrs[attr] = decode(how, value, (path, key))
        else:
            raise shape_error(f"a list of {how.cls.__name__}", (path, key), value)
    for key in required:
        if document.get(key) is None:
            raise shape_error(f"a value for {key!r}", path, None, missing=True)
    for attr, key, how in chosen:
        sub = by_model(how, attrs.get(how[0], selected), attrs.get(attr))
        if sub is not None:
            attrs[attr] = decode(plan(sub), attrs[attr], (path, key))
    attrs["extra"] = extra
    attrs[WIRE] = document
    return build(cls, attrs)


def build(cls: type[_T], attrs: dict[str, Any]) -> _T:
    """An object of ``cls`` with these attributes, as its ``__init__`` would leave it, without
    the ``object.__setattr__`` per field of a frozen dataclass (the decoders run per event)."""
    obj = _new(cls)
    _set_dict(obj, "__dict__", attrs)
    return obj


_new, _set_dict = object.__new__, object.__setattr__


class _Lazy:
    """A model field whose value passed its plan's check, decoded on first access and kept in
    the object's ``__dict__`` (where attribute lookup finds it before this descriptor): links,
    the function and the like were half the decoding cost of a list item or a job event, and
    are seldom read."""

    def __init__(self, name: str, key: str, spec: Plan) -> None:
        self.name, self.key, self.spec = name, key, spec

    def __get__(self, obj: Any, owner: Optional[type] = None) -> Any:
        if obj is None:
            return None  # the dataclass default, read on the class
        raw = obj.__dict__[WIRE].get(self.key)
        path = (type(obj).__name__, self.key)
        value = obj.__dict__[self.name] = None if raw is None else decode(self.spec, raw, path)
        return value


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


# -- the base class ----------------------------------------------------------------------------


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

    @classmethod
    def from_wire(cls: type[_M], data: Mapping[str, Any]) -> _M:
        """Decode a parsed JSON object; raises :class:`DecodeError` when its shape is wrong."""
        return cast(_M, decode(_PLANS.get(cls) or plan(cls), data, cls.__name__))

    def to_wire(self) -> dict[str, Any]:
        """The wire document: the one decoded (a copy), or the fields (``None`` left out) and
        ``extra`` of a model built by hand."""
        document = self.__dict__.get(WIRE)
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
        """A marshmallow schema that loads with :meth:`from_wire` and dumps with :meth:`to_wire`
        (a wrong shape raises ``marshmallow.ValidationError``), for code written against
        dataclasses-json, whose own schema cannot express the per-type unions or ``extra``."""
        import marshmallow  # here, not at the top: 10 ms of imports (docs/performance.md)

        class Schema(marshmallow.Schema):
            class Meta:
                unknown = marshmallow.INCLUDE

            def load(self, data: Any, *, many: Optional[bool] = None, **_: Any) -> Any:
                try:
                    if not (self.many if many is None else many):
                        return cls.from_wire(data)
                    if not isinstance(data, (list, tuple)):
                        raise marshmallow.ValidationError("expected a list of documents")
                    return [cls.from_wire(item) for item in data]
                except DecodeError as exc:
                    raise marshmallow.ValidationError({exc.path or "_schema": [str(exc)]}) from exc

            def dump(self, obj: Any, *, many: Optional[bool] = None) -> Any:
                if self.many if many is None else many:
                    return [item.to_wire() for item in obj]
                return obj.to_wire()

        Schema.__name__ = Schema.__qualname__ = f"{cls.__name__}Schema"
        kwargs.pop("infer_missing", None)
        return Schema(many=many, **kwargs)

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
