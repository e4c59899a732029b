"""The wire codec of the models: field plans, decoders, encoders, and the ``WireModel`` base.

Moved out of ``_models.py`` unchanged; ``_models.py`` declares the models.
"""

# Field types keep typing.Optional/Union: dataclasses-json and the plan builder resolve them at
# run time, where ``X | None`` does not evaluate on Python 3.9.

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import (
    Any,
    Callable,
    Optional,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)

from dataclasses_json import DataClassJsonMixin, LetterCase, config
from dataclasses_json.core import Json

from ._exceptions import DecodeError

_M = TypeVar("_M", bound="WireModel")
_META = "waylay_jobs"

# -- the codec engine -------------------------------------------------------------------------

# A converter gets the non-null wire value, the path of the object, the wire key and the
# attributes decoded so far (fields are decoded in order, so a hook can look at ``type``).
_Conv = Callable[[Any, str, str, dict[str, Any]], Any]
_Hook = Callable[[Any, str, dict[str, Any]], Any]


@dataclass(frozen=True)
class _Plan:
    name: str
    fields: tuple[tuple[str, str, Optional[_Conv], bool], ...]  # attr, wire, conv, required
    known: frozenset[str]
    encoded: tuple[tuple[str, str, bool], ...]  # attr, wire, needs _encode
    decoder: Callable[[Any, str], Any]  # compiled from ``fields`` by _compile_decoder


_PLANS: dict[type, _Plan] = {}


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def _shape_error(expected: str, path: str, value: Any, *, missing: bool = False) -> DecodeError:
    root = path.partition(".")[0].partition("[")[0]
    rest = path[len(root) :].lstrip(".")
    got = "nothing (the key is missing or null)" if missing else _describe(value)
    return DecodeError(
        f"the document does not have the shape of {root}: expected {expected} at "
        f"{rest or 'the top level'}, got {got}",
        model=root,
        path=rest,
    )


def _compile_decoder(
    cls: type,
    name: str,
    rows: list[tuple[str, str, Optional[_Conv], bool]],
    known: frozenset[str],
    lazy: Mapping[str, Callable[[Any], bool]],
) -> Callable[[Any, str], Any]:
    """A decoder function specialised to one class's fields.

    The same steps as a loop over the field plan, unrolled into straight-line code (as
    ``dataclasses`` does for ``__init__``): decoding runs on every event and list item, and
    the unrolled form costs about half as much.
    """
    namespace: dict[str, Any] = {
        "Mapping": Mapping,
        "new": object.__new__,
        "cls": cls,
        "known": known,
        "shape": _shape_error,
    }
    lines = [
        "def decode(d, path):",
        "    if d.__class__ is not dict:",
        "        if not isinstance(d, Mapping):",
        f"            raise shape({f'an object ({name})'!r}, path, d)",
        "        d = dict(d)",
        "    obj = new(cls)",
        "    od = obj.__dict__",
        "    get = d.get",
    ]
    for i, (attr, wire, conv, required) in enumerate(rows):
        namespace[f"conv{i}"] = conv
        call = "v" if conv is None else f"conv{i}(v, path, {wire!r}, od)"
        lines.append(f"    v = get({wire!r})")
        if required:
            lines.append("    if v is None:")
            lines.append(
                f"        raise shape({f'a value for {wire!r}'!r}, path, None, missing=True)"
            )
            lines.append(f"    od[{attr!r}] = {call}")
        elif attr in lazy:
            # Kept as it came and decoded on first access (see ``_Lazy``) when the check
            # promises that decoding cannot fail; else decoded now, raising as usual.
            namespace[f"ok{i}"] = lazy[attr]
            lines.append("    if v is None:")
            lines.append(f"        od[{attr!r}] = None")
            lines.append(f"    elif ok{i}(v):")
            lines.append(f"        od[{_lazy_key(attr)!r}] = v")
            lines.append("    else:")
            lines.append(f"        od[{attr!r}] = {call}")
        elif conv is None:
            lines.append(f"    od[{attr!r}] = v")
        else:
            lines.append(f"    od[{attr!r}] = None if v is None else {call}")
    lines += [
        "    od['extra'] = {} if known.issuperset(d) else "
        "{k: x for k, x in d.items() if k not in known}",
        "    if None in d.values():",
        # Remembered outside the dataclass fields (so not in eq/repr) for an exact to_wire.
        "        od['_wire_nulls'] = frozenset("
        "k for k, x in d.items() if x is None and k in known)",
        "    return obj",
    ]
    exec("\n".join(lines), namespace)  # noqa: S102 - generated from our own field plan
    return cast(Callable[[Any, str], Any], namespace["decode"])


_TIME_TEXT = "_wire_text_"  # + wire name: the text a timestamp was parsed from, for to_wire
_UTC = timezone.utc


def parse_time(text: str) -> Union[datetime, str]:
    """An ISO-8601 date-time with a UTC offset (``2024-05-02T09:14:03.512Z``) as an aware
    ``datetime``; any other text (no offset, not a date-time) is returned unchanged."""
    value: Optional[datetime]
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = _parse_time_compat(text)
    return text if value is None or value.tzinfo is None else value


_ISO_TIME = re.compile(
    r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d)?)(?:\.(\d{1,6})\d*)?(Z|[+-]\d\d:?\d\d)", re.A
)


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


def _time_conv(v: Any, path: str, wire: str, od: dict[str, Any]) -> Any:
    if v.__class__ is not str:
        return v  # numbers (epoch ms) and other values pass through
    value = parse_time(v)
    if value is not v:
        od[_TIME_TEXT + wire] = v
    return value


def _encode(value: Any) -> Any:
    if isinstance(value, WireModel):
        return value.to_wire()
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return format_time(value)
    return value


def _model_conv(sub: type) -> _Conv:
    plan = _plan(sub)
    decode = plan.decoder
    return lambda v, path, wire, od: decode(v, f"{path}.{wire}")


def _list_conv(sub: type) -> _Conv:
    plan = _plan(sub)

    def conv(v: Any, path: str, wire: str, od: dict[str, Any]) -> Any:
        if v.__class__ is not list:
            raise _shape_error(f"a list of {sub.__name__}", f"{path}.{wire}", v)
        return [plan.decoder(item, f"{path}.{wire}[{i}]") for i, item in enumerate(v)]

    return conv


def _one_or_many_conv(sub: type) -> _Conv:
    plan = _plan(sub)
    many = _list_conv(sub)

    def conv(v: Any, path: str, wire: str, od: dict[str, Any]) -> Any:
        if v.__class__ is list:
            return many(v, path, wire, od)
        return plan.decoder(v, f"{path}.{wire}")

    return conv


def _enum_conv(enum: type[Enum]) -> _Conv:
    table = {member.value: member for member in enum}
    return lambda v, path, wire, od: table.get(v, v) if v.__class__ is str else v


def _container_conv(kind: type, expected: str) -> _Conv:
    def conv(v: Any, path: str, wire: str, od: dict[str, Any]) -> Any:
        if not isinstance(v, kind):
            raise _shape_error(expected, f"{path}.{wire}", v)
        return v

    return conv


def _hook_conv(hook: _Hook) -> _Conv:
    return lambda v, path, wire, od: hook(v, f"{path}.{wire}", od)


def _is_subclass(tp: Any, base: type) -> bool:
    # get_origin: on Python 3.9 ``dict[str, Any]`` passes isinstance(..., type) but not issubclass.
    return isinstance(tp, type) and get_origin(tp) is None and issubclass(tp, base)


def _is_model(tp: Any) -> bool:
    return _is_subclass(tp, WireModel)


def _converter(tp: Any) -> Optional[_Conv]:
    """Choose the converter for a field from its type hint; ``None`` passes the value through."""
    options = [a for a in get_args(tp) if a is not type(None)] if get_origin(tp) is Union else [tp]
    if datetime in options:
        return _time_conv
    models = [a for a in options if _is_model(a)]
    lists = [get_args(a)[0] for a in options if get_origin(a) is list]
    if models and lists and lists[0] is models[0]:
        return _one_or_many_conv(models[0])
    if len(options) == 1:
        (only,) = options
        if _is_model(only):
            return _model_conv(only)
        if lists:
            return _list_conv(lists[0]) if _is_model(lists[0]) else _container_conv(list, "a list")
        if get_origin(only) is dict:
            return _container_conv(dict, "an object")
    enums = [a for a in options if _is_subclass(a, Enum)]
    return _enum_conv(enums[0]) if enums else None


def _wire_name(cls: type, f: Any) -> str:
    letter_case = f.metadata.get("dataclasses_json", {}).get("letter_case")
    if letter_case is None:
        letter_case = (getattr(cls, "dataclass_json_config", None) or {}).get("letter_case")
    return str(letter_case(f.name)) if letter_case is not None else str(f.name)


def _plan(cls: type) -> _Plan:
    """The field plan of a model class, built on first use from its dataclass metadata.

    On first use rather than at import: most programs decode a few of the models. Two threads
    may build the same plan at once; both get equal plans, and one is kept.
    """
    plan = _PLANS.get(cls)
    if plan is not None:
        return plan
    hints = get_type_hints(cls)
    rows = []
    lazy = {}
    for f in fields(cls):
        meta = f.metadata.get(_META, {})
        if meta.get("extra"):
            continue
        if meta.get("lazy") is not None:
            lazy[f.name] = meta["lazy"]
        hook = meta.get("hook")
        conv = _hook_conv(hook) if hook is not None else _converter(hints[f.name])
        rows.append((f.name, _wire_name(cls, f), conv, bool(meta.get("required"))))
    known = frozenset(wire for _, wire, _, _ in rows)
    plan = _Plan(
        name=cls.__name__,
        fields=tuple(rows),
        known=known,
        encoded=tuple((attr, wire, conv is not None) for attr, wire, conv, _ in rows),
        decoder=_compile_decoder(cls, cls.__name__, rows, known, lazy),
    )
    _PLANS[cls] = plan
    return plan


def _lazy_key(attr: str) -> str:
    return f"_wire_{attr}"


class _Lazy:
    """A field of a decoded object that is decoded from its wire value on first access.

    The decoder stores the wire value under ``_wire_<name>`` only after a check has
    promised that decoding it cannot fail, so access never raises. A data descriptor, so it
    comes before the instance ``__dict__``; the decoded value is cached there. Two threads
    may both decode on first access; they store equal values.
    """

    def __init__(self, owner: type, name: str) -> None:
        self.owner = owner
        self.name = name
        self.key = _lazy_key(name)
        self._decode: Optional[Callable[[Any, dict[str, Any]], Any]] = None

    def __get__(self, obj: Any, owner: Optional[type] = None) -> Any:
        if obj is None:
            return None  # the dataclass default
        od = obj.__dict__
        try:
            return od[self.name]
        except KeyError:
            pass
        decode = self._decode or self._converter()
        value = od[self.name] = decode(od[self.key], od)
        return value

    def _converter(self) -> Callable[[Any, dict[str, Any]], Any]:
        # Looked up once: the plan's converter for this (model-typed) field.
        plan = _plan(self.owner)
        _, wire, conv, _ = next(row for row in plan.fields if row[0] == self.name)
        convert = cast(_Conv, conv)  # only model-typed fields are lazy: never None
        self._decode = lambda raw, od: convert(raw, plan.name, wire, od)
        return self._decode

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.name] = value  # only ``__init__`` gets here: the models are frozen


def _lazy(check: Callable[[Any], bool]) -> dict[str, Any]:
    """Field metadata: decode on first access when ``check(wire value)`` (see ``_Lazy``)."""
    return {_META: {"lazy": check}}


def _make_lazy(cls: type) -> None:
    for f in fields(cls):
        if f.metadata.get(_META, {}).get("lazy") is not None:
            setattr(cls, f.name, _Lazy(cls, f.name))


class WireModel(DataClassJsonMixin):
    """Base of every wire model: ``from_wire``/``to_wire`` plus the ``dataclasses-json`` API."""

    dataclass_json_config = config(letter_case=LetterCase.CAMEL)["dataclasses_json"]
    extra: dict[str, Any]

    @classmethod
    def from_wire(cls: type[_M], data: Mapping[str, Any]) -> _M:
        """Decode a parsed JSON object; raises :class:`DecodeError` when its shape is wrong."""
        return cast(_M, _plan(cls).decoder(data, cls.__name__))

    def to_wire(self) -> dict[str, Any]:
        """The wire document: known fields (``None`` omitted unless it came as ``null``), extras."""
        out: dict[str, Any] = {}
        nulls = self.__dict__.get("_wire_nulls", ())
        for attr, wire, encode in _plan(type(self)).encoded:
            value = getattr(self, attr)
            if value is None:
                if wire in nulls:
                    out[wire] = None
            elif value.__class__ is datetime:
                out[wire] = self.__dict__.get(_TIME_TEXT + wire) or format_time(value)
            else:
                out[wire] = _encode(value) if encode else value
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls: type[_M], kvs: Json, *, infer_missing: bool = False) -> _M:
        """Same as :meth:`from_wire` (``infer_missing`` is implied: missing fields are ``None``)."""
        if not isinstance(kvs, Mapping):
            raise _shape_error(f"an object ({cls.__name__})", cls.__name__, kvs)
        return cls.from_wire(kvs)

    def to_dict(self, encode_json: bool = False) -> dict[str, Json]:
        """Same as :meth:`to_wire`."""
        return self.to_wire()


# Field metadata of this module (beside dataclasses-json's): ``required`` marks a structural field
# (decoding fails without it), ``hook`` decodes a field whose model depends on the job type,
# ``extra`` marks the field that keeps unknown keys.
_REQUIRED = {_META: {"required": True}}
_EXTRA = {_META: {"extra": True}}
_LINKS = config(field_name="_links")


def _hook(hook: _Hook, *, required: bool = False) -> dict[str, Any]:
    return {_META: {"hook": hook, "required": required}}


def _raw(value: Any, path: str, od: dict[str, Any]) -> Any:
    return value
