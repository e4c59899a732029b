"""The wire codec: parsed JSON documents to model dataclasses and back, no I/O.

A model is a frozen dataclass made with :func:`model`: its attributes are the snake_case of
the camelCase wire names (``field(metadata=wire("_links"))`` names one otherwise), a field
without a default is required, and a last field ``extra`` keeps the keys the model does not
know. On first use each class gets a :class:`Plan`, read from its fields and their types, that
the decoder walks in a plain loop:

* a field typed with a model, a list of models or both decodes to them; an enum field to its
  member, or the plain string when the value is unknown; a ``datetime`` field to an aware
  ``datetime`` when its text is ISO-8601 with an offset, else the text stays; a ``dict`` or
  ``list`` field is checked for its shape; other values pass through unchecked;
* ``field(metadata=by("type", models, loose))`` decodes a field by the value of an earlier
  field (the requests and results, whose model depends on the job's ``type``);
* a model field is decoded on first access when a check says that decoding it cannot fail
  (an object whose fields are scalars, enums, timestamps, or checked: a dict, a list, a
  model of such fields); else at once, so that a bad document fails at once;
* a document of the wrong shape raises :class:`DecodeError` with the path of the bad value.

A decoded object keeps the document it came from, so ``to_wire()`` gives back exactly that
document (explicit ``null`` values, unknown keys and timestamp texts included); a model built
by hand is encoded from its fields (``None`` left out, datetimes as ISO-8601 with ``Z``).
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


_T = TypeVar("_T")
_M = TypeVar("_M", bound="WireModel")
#: A path in a document, built only when an error needs it: the model's name, or the path of
#: the parent and a key (``str``) or list index (``int``).
Path = Union[str, tuple[Any, Union[str, int]]]
_Check = Callable[[Any], bool]

_WIRE = "_wire"  # where a decoded object keeps its document (not a field: not in eq or repr)
# How a field is decoded (the ``kind`` of a plan row; ``None``: the value passes through).
_ENUM, _TIME, _CHECK, _BY = "enum", "time", "check", "by"
_MODEL, _LIST, _ONE_OR_LIST, _LAZY = "model", "list", "one or list", "lazy"
_NESTED = (_MODEL, _LIST, _ONE_OR_LIST)  # the kinds whose ``how`` is the plan of a model
_new = object.__new__


# -- declaring models --------------------------------------------------------------------------


def wire(name: str) -> dict[str, Any]:
    """Field metadata: the wire name of a field that is not the camelCase of its name."""
    return {"wire": name}


def by(selector: str, models: Mapping[str, type], loose: frozenset[str]) -> dict[str, Any]:
    """Field metadata: the model of the field is ``models[<value of the field selector>]``
    (an earlier field). Without a model, or for a ``loose`` selector value when the field is
    not an object, the value stays as it came."""
    return {"by": (selector, models, loose)}


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def model(cls: type[_T]) -> type[_T]:
    """Make a wire model: a frozen dataclass with a last field ``extra`` for unknown keys.

    ``__eq__``, ``__repr__`` and ``__hash__`` come from :class:`WireModel` (the same as the
    dataclass ones, not generated per class: measured 0.42 -> 0.26 ms per class, a third of
    the import time of the models).
    """
    cls.__annotations__["extra"] = "dict[str, Any]"
    setattr(cls, "extra", field(default_factory=dict, repr=False, compare=False))  # noqa: B010
    made = dataclass(frozen=True, eq=False, repr=False)(cls)
    for f in fields(cast(Any, made)):
        if _lazy_check(f) is not None:
            setattr(made, f.name, _Lazy(made, f.name))
    return made


def _lazy_check(f: Field[Any]) -> Optional[_Check]:
    """The check that lets the model field ``f`` be decoded on first access, if it may be."""
    if f.name == "extra" or "by" in f.metadata:
        return None
    kind, sub = _step(f.type)
    return _object_check(plan(sub)) if kind is _MODEL else None


def _object_check(sub: Plan) -> Optional[_Check]:
    """For a model without required fields whose fields cannot fail to decode (scalars,
    enums, timestamps) or are checked (a dict or list, a model of such fields, one or a list
    of models of scalars): the check that a value is an object that cannot fail to decode.
    ``None`` for other models."""
    if sub.required:
        return None
    checks: dict[str, _Check] = {}
    for key, (_, kind, how) in sub.fields.items():
        inner = how[0] if kind is _LAZY else _object_check(how) if kind in _NESTED else None
        if kind is _CHECK:
            checks[key] = _is_a(how)
        elif kind is _LAZY or (kind is _MODEL and inner is not None):
            checks[key] = cast(_Check, inner)
        elif kind is _ONE_OR_LIST and inner is _is_object:
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


def _is_a(kind: type) -> _Check:
    return lambda value: isinstance(value, kind)


def _is_objects(value: Any) -> bool:
    """One object or a list of objects (a HAL link, or several)."""
    kind = value.__class__
    return kind is dict or (kind is list and all(item.__class__ is dict for item in value))


def object_check(cls: type) -> Optional[_Check]:
    """The check that a value cannot fail to decode as ``cls`` (see ``_object_check``)."""
    return _object_check(plan(cls))


def _is_object(value: Any) -> bool:
    return value.__class__ is dict  # what json.loads makes; another mapping is decoded at once


class Plan(NamedTuple):
    """How one model class is decoded and encoded, read from its fields once."""

    cls: type
    name: str
    fields: dict[str, tuple[str, Optional[str], Any]]  # wire name -> attr, kind, how
    required: tuple[tuple[str, str], ...]  # (attr, wire) of the fields without a default
    chosen: tuple[tuple[str, str, Any], ...]  # (attr, wire, how) of the ``by()`` fields
    encoded: tuple[tuple[str, str], ...]  # (attr, wire) of the fields, in order
    compared: tuple[str, ...]  # the fields in __eq__ and __hash__
    shown: tuple[str, ...]  # the fields in __repr__


_PLANS: dict[type, Plan] = {}


def plan(cls: type) -> Plan:
    """The plan of a model class, built on first use (two threads may both build it; equal)."""
    found = _PLANS.get(cls)
    if found is None:
        found = _PLANS[cls] = _build_plan(cls)
    return found


def _build_plan(cls: type) -> Plan:
    index: dict[str, tuple[str, Optional[str], Any]] = {}
    required, chosen, encoded = [], [], []
    for f in fields(cls):
        if f.name == "extra":
            continue
        key = f.metadata.get("wire") or _camel(f.name)
        kind, how = (_BY, f.metadata["by"]) if "by" in f.metadata else _step(f.type)
        check = _lazy_check(f)
        if check is not None:
            kind, how = _LAZY, (check, how)
        elif kind in _NESTED:
            how = plan(how)  # models only refer to models declared before them: no cycles
        elif kind is _BY:
            chosen.append((f.name, key, how))
        index[key] = (f.name, kind, how)
        encoded.append((f.name, key))
        if f.default is MISSING and f.default_factory is MISSING:
            required.append((f.name, key))
    return Plan(
        cls=cls,
        name=cls.__name__,
        fields=index,
        required=tuple(required),
        chosen=tuple(chosen),
        encoded=tuple(encoded),
        compared=tuple(f.name for f in fields(cls) if f.compare),
        shown=tuple(f.name for f in fields(cls) if f.repr),
    )


def _camel(name: str) -> str:
    # dataclasses-json's LetterCase.CAMEL gives the same names; importing it costs 16 ms
    # (docs/performance.md, import table), too much for the cold start of a CLI or a task.
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


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
        (only,) = options
        if models:
            return _MODEL, only
        if lists:
            return (_LIST, lists[0]) if _is_model(lists[0]) else (_CHECK, list)
        if get_origin(only) is dict:
            return _CHECK, dict
    enums = [a for a in options if isinstance(a, type) and issubclass(a, Enum)]
    if enums:
        return _ENUM, {member.value: member for member in enums[0]}
    return None, None


def _is_model(tp: Any) -> bool:
    # get_origin: on Python 3.9 ``dict[str, Any]`` passes isinstance(..., type).
    return isinstance(tp, type) and get_origin(tp) is None and issubclass(tp, WireModel)


# -- decoding ----------------------------------------------------------------------------------


def decode(spec: Plan, document: Any, path: Path) -> Any:
    """Decode ``document`` into ``spec``'s class; raises :class:`DecodeError` (with ``path``)."""
    cls, name, index, required, chosen, _, _, _ = spec  # index: Plan.fields
    if document.__class__ is not dict:
        if not isinstance(document, Mapping):
            raise shape_error(f"an object ({name})", path, document)
        document = dict(document)
    # One loop over the document into a new dict, set as the object's __dict__ at the end; a
    # field the document lacks reads as the class's default (None). Measured per list item,
    # job and event envelope: a quarter faster than a loop per kind of field, 10% faster
    # than a loop over the fields, half the cost of filling obj.__dict__.
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
            check, sub = how
            if not check(value):  # decoding may fail: decoded now, so that it fails now
                attrs[attr] = decode(plan(sub), value, (path, key))
        elif kind is _CHECK:
            if not isinstance(value, how):
                raise shape_error(_EXPECTED[how], (path, key), value)
            attrs[attr] = value
        elif value.__class__ is list:  # _LIST, _ONE_OR_LIST
            here = (path, key)
            attrs[attr] = [decode(how, item, (here, i)) for i, item in enumerate(value)]
        elif kind is _ONE_OR_LIST:
            attrs[attr] = decode(how, value, (path, key))
        else:
            raise shape_error(f"a list of {how.name}", (path, key), value)
    if required:
        for _, key in required:
            if document.get(key) is None:
                raise shape_error(f"a value for {key!r}", path, None, missing=True)
    if chosen:
        for attr, key, how in chosen:
            value = attrs.get(attr)
            if value is not None:
                attrs[attr] = decode_by(how, attrs.get(how[0]), value, (path, key))
    attrs["extra"] = extra
    attrs[_WIRE] = document
    obj: Any = _new(cls)
    _set(obj, "__dict__", attrs)
    return obj


_set = object.__setattr__
_EXPECTED = {list: "a list", dict: "an object"}


class _Lazy:
    """A field decoded from the object's document on first access, then kept.

    Only for model fields whose check promised at decode time that decoding cannot fail, so
    access never raises (links, function, the queue status, ...): they were half the
    decoding cost of a list item or a job event (bench/profile_events.py), and are seldom
    read. A data descriptor, so it comes before the instance ``__dict__``; two threads may
    both decode on first access, and store equal values.
    """

    def __init__(self, owner: type, name: str) -> None:
        self.owner = owner
        self.name = name

    def __get__(self, obj: Any, owner: Optional[type] = None) -> Any:
        if obj is None:
            return None  # the dataclass default, read on the class
        attrs = obj.__dict__
        try:
            return attrs[self.name]
        except KeyError:
            pass
        this = plan(self.owner)
        key = next(key for attr, key in this.encoded if attr == self.name)
        raw = attrs[_WIRE].get(key)
        _, sub = this.fields[key][2]
        value = None if raw is None else decode(plan(sub), raw, (self.owner.__name__, key))
        attrs[self.name] = value
        return value

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


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def path_text(path: Path) -> str:
    """``JobsResponse.jobs[1].function`` from a :data:`Path`."""
    parts: list[str] = []
    while isinstance(path, tuple):
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return path + "".join(reversed(parts))


def shape_error(expected: str, path: Path, value: Any, *, missing: bool = False) -> DecodeError:
    """The :class:`DecodeError` for a value of the wrong shape (or a missing one) at ``path``."""
    text = path_text(path)
    root = text.partition(".")[0].partition("[")[0]
    rest = text[len(root) :].lstrip(".")
    got = "nothing (the key is missing or null)" if missing else _describe(value)
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


# -- encoding ----------------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """The wire form of a field value: models, enums, datetimes and lists of them."""
    if isinstance(value, WireModel):
        return value.to_wire()
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return format_time(value)
    return value


def _copy(value: Any) -> Any:
    # A document of json.loads, copied so that a caller's changes stay out of the model.
    if value.__class__ is dict:
        return {key: _copy(item) for key, item in value.items()}
    if value.__class__ is list:
        return [_copy(item) for item in value]
    return value


# -- the base class ----------------------------------------------------------------------------


class WireModel:
    """Base of every wire model: ``from_wire``/``to_wire`` and the dataclasses-json API."""

    extra: dict[str, Any]

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
        out: dict[str, Any] = {}
        for attr, name in plan(type(self)).encoded:
            value = getattr(self, attr)
            if value is not None:
                out[name] = encode(value)
        out.update(self.extra)
        return out

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

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        names = plan(type(self)).compared
        return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in plan(type(self)).compared))

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in plan(type(self)).shown)
        return f"{type(self).__qualname__}({shown})"
