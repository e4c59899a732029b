"""Wire models of the Jobs API: enums, dataclasses and their JSON codecs.

Every model is a frozen dataclass whose attributes are the snake_case of the camelCase wire names
(``_links`` becomes ``links``). The wire mapping is declared once, with ``dataclasses-json``
metadata (camelCase letter case, ``field_name`` overrides); from it each class gets a field plan,
built once, that drives the fast codecs:

* ``Model.from_wire(document)`` decodes a parsed JSON object. Missing optional fields and explicit
  ``null`` both give ``None``; unknown keys are kept in ``extra``; unknown enum values stay plain
  strings. A document of the wrong shape (an object that is a list, a missing job ``type``, ...)
  raises :class:`DecodeError`. Scalars are not type-checked: the server's values pass through.
  Timestamps (``created_at``, ``processed_at``, ``finished_at``, an event's ``timestamp``) are
  timezone-aware ``datetime`` objects; text that is not an ISO-8601 date-time with an offset
  stays the string it was (and a number stays a number).
* ``model.to_wire()`` gives the wire document back: ``Model.from_wire(d).to_wire() == d`` holds,
  including unknown keys, explicit ``null`` values and the exact text of each timestamp (the
  decoder notes which known keys were ``null`` and the text a ``datetime`` came from; a model
  built by hand omits its ``None`` fields and writes its datetimes with :func:`format_time`).
* ``from_dict``/``to_dict``/``from_json``/``to_json`` (the ``dataclasses-json`` API) use the same
  codecs, so both paths agree. Free-form values (maps, lists, ``extra``) are shared, not copied.
  ``schema()`` is still dataclasses-json's own marshmallow schema, which knows nothing of the
  per-job-type unions: prefer the codecs above.

The codecs walk the plan in a plain loop (no generated code): decoding costs about 1.5-2x
``json.loads`` of the same document, where generic dataclasses-json decoding costs ~300x.
"""

# Field types keep typing.Optional/Union: dataclasses-json and the plan builder resolve them at
# run time, where ``X | None`` does not evaluate on Python 3.9.

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
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

from ._exceptions import DecodeError, EventDecodeError

_M = TypeVar("_M", bound="WireModel")
_META = "waylay_jobs"
_SNIPPET = 200


# -- enums ------------------------------------------------------------------------------------


class _WireEnum(str, Enum):
    """A ``str`` enum whose ``str()`` and format are the wire value."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)


class JobType(_WireEnum):
    """The job types (``EJobType``)."""

    BUILD = "build"
    DEPLOY = "deploy"
    VERIFY = "verify"
    UNDEPLOY = "undeploy"
    BATCH = "batch"
    SCALE = "scale"
    CLEANUP = "cleanup"
    NOTIFY = "notify"


class JobState(_WireEnum):
    """The job states (``JobStateResult``); ``completed`` and ``failed`` are terminal."""

    COMPLETED = "completed"
    FAILED = "failed"
    ACTIVE = "active"
    DELAYED = "delayed"
    WAITING = "waiting"
    WAITING_CHILDREN = "waiting-children"
    PRIORITIZED = "prioritized"
    UNKNOWN = "unknown"


class FunctionType(_WireEnum):
    """The kinds of function a job acts on (``kfserving`` is a BYOML model)."""

    PLUGS = "plugs"
    WEBSCRIPTS = "webscripts"
    KFSERVING = "kfserving"


class QueueEvent(_WireEnum):
    """BullMQ queue events (``QueueEvents``), used as the ``prev`` state of job events."""

    COMPLETED = "completed"
    FAILED = "failed"
    ACTIVE = "active"
    DELAYED = "delayed"
    WAITING = "waiting"
    WAITING_CHILDREN = "waiting-children"
    ADDED = "added"
    CLEANED = "cleaned"
    DRAINED = "drained"
    ERROR = "error"
    PAUSED = "paused"
    PROGRESS = "progress"
    REMOVED = "removed"
    RESUMED = "resumed"
    RETRIES_EXHAUSTED = "retries-exhausted"
    STALLED = "stalled"


class RequestOperation(_WireEnum):
    """The operations that start jobs (``ERequestOperation``)."""

    CREATE = "create"
    METADATA_UPDATE = "metadata-update"
    ASSETS_UPDATE = "assets-update"
    REBUILD = "rebuild"
    VERIFY = "verify"
    PUBLISH = "publish"
    DEPRECATE = "deprecate"
    UNDEPLOY = "undeploy"
    UNDEPRECATE = "undeprecate"
    PROTECT = "protect"
    UNPROTECT = "unprotect"


#: The states in which a job has ended (enum members compare equal to these strings).
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "failed"})

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


def _is_object(v: Any) -> bool:
    # What json.loads makes; any other mapping is decoded at once.
    return v.__class__ is dict


def _is_links(v: Any) -> bool:
    """Whether decoding ``Links`` from ``v`` cannot fail: an object whose known links are
    objects or lists of objects (the fields of a link, and other keys, are never checked)."""
    if v.__class__ is not dict:
        return False
    for key in _LINK_KEYS:
        value = v.get(key)
        cls = value.__class__
        if cls is list:
            if not all(item.__class__ is dict for item in value):
                return False
        elif cls is not dict and value is not None:
            return False
    return True


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


_Number = Union[int, float]
#: A timestamp: a timezone-aware ``datetime``, or the wire text when it is not an ISO-8601
#: date-time with an offset (forward compatible: odd text never fails a decode).
_Time = Union[datetime, str, None]

# -- common parts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionRef(WireModel):
    """The function a job acts on."""

    function_type: Union[FunctionType, str, None] = None
    name: Optional[str] = None
    version: Optional[str] = None
    runtime: Optional[str] = None
    runtime_version: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class JobReference(WireModel):
    """A job's type and id (the ``job`` of an event, ``scheduledJob`` of a cleanup)."""

    type: Union[JobType, str] = field(metadata=_REQUIRED)
    id: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class ParentKeys(WireModel):
    """The parent of a job (``JobStatus.parent``)."""

    id: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class JobStatus(WireModel):
    """The BullMQ view of a job (``job.job`` in a get response)."""

    id: Optional[str] = None
    name: Optional[str] = None
    progress: Union[int, float, dict[str, Any], None] = None
    attempts_made: Optional[_Number] = None
    finished_on: Union[str, int, float, None] = None
    processed_on: Union[str, int, float, None] = None
    failed_reason: Optional[str] = None
    parent: Optional[ParentKeys] = None
    delay: Optional[_Number] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)

    @property
    def numeric_progress(self) -> Optional[float]:
        """``progress`` as a float when it is a number, else ``None`` (it may be an object)."""
        value = self.progress
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None


@dataclass(frozen=True)
class HalLink(WireModel):
    """A HAL link."""

    href: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class JobHalLink(WireModel):
    """A HAL link to a job; ``job_type`` is absent from servers older than API 2.17."""

    href: Optional[str] = None
    job_type: Union[JobType, str, None] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class Links(WireModel):
    """HAL ``_links``: each value is one link or a list of links; which keys appear varies."""

    job: Union[JobHalLink, list[JobHalLink], None] = None
    event: Union[HalLink, list[HalLink], None] = None
    plug: Union[HalLink, list[HalLink], None] = None
    webscript: Union[HalLink, list[HalLink], None] = None
    model: Union[HalLink, list[HalLink], None] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


_LINK_KEYS = tuple(f.name for f in fields(Links) if f.name != "extra")  # wire names too


# -- requests (``job.request``, per job type) -------------------------------------------------


@dataclass(frozen=True)
class BuildArgs(WireModel):
    """The request of a build job."""

    storage_location: Optional[str] = None
    image_name: Optional[str] = None
    runtime_name: Optional[str] = None
    runtime_version: Optional[str] = None
    revision: Optional[str] = None
    args: Optional[dict[str, str]] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class ResourceLimits(WireModel):
    """Memory and CPU limits or requests of a deployment."""

    memory: Optional[str] = None
    cpu: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class DeploySpecOverrides(WireModel):
    """Overrides of the openfaas deploy spec (``DeployArgsDeploySpecOverrides``)."""

    service: Optional[str] = None
    image: Optional[str] = None
    namespace: Optional[str] = None
    network: Optional[str] = None
    env_vars: Optional[dict[str, str]] = None
    constraints: Optional[list[str]] = None
    labels: Optional[dict[str, str]] = None
    annotations: Optional[dict[str, str]] = None
    secrets: Optional[list[str]] = None
    registry_auth: Optional[str] = None
    limits: Optional[ResourceLimits] = None
    requests: Optional[ResourceLimits] = None
    read_only_root_filesystem: Optional[bool] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class DeployArgs(WireModel):
    """The request of a deploy job."""

    namespace: Optional[str] = None
    endpoint: Optional[str] = None
    image_name: Optional[str] = None
    runtime_name: Optional[str] = None
    runtime_version: Optional[str] = None
    revision: Optional[str] = None
    deploy_spec_overrides: Optional[DeploySpecOverrides] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class VerifyArgs(WireModel):
    """The request of a verify job."""

    namespace: Optional[str] = None
    endpoint: Optional[str] = None
    runtime_name: Optional[str] = None
    runtime_version: Optional[str] = None
    revision: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class UndeployArgs(WireModel):
    """The request of an undeploy job."""

    storage_location: Optional[str] = None
    image_name: Optional[str] = None
    namespace: Optional[str] = None
    endpoint: Optional[str] = None
    runtime_name: Optional[str] = None
    runtime_version: Optional[str] = None
    revision: Optional[str] = None
    delete_entity: Optional[bool] = None
    reset_entity: Optional[bool] = None
    delete_image: Optional[bool] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class ScaleArgs(WireModel):
    """The request of a scale job."""

    namespace: Optional[str] = None
    endpoint: Optional[str] = None
    runtime_name: Optional[str] = None
    runtime_version: Optional[str] = None
    revision: Optional[str] = None
    replicas: Optional[_Number] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class BatchArgs(WireModel):
    """The request of a batch job."""

    plug_name: Optional[str] = None
    function_type: Union[FunctionType, str, None] = None
    child_type: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


# -- results (``job.result`` and the ``returnvalue`` of a completed event) ----------------------


@dataclass(frozen=True)
class BuildResult(WireModel):
    """The result of a build job."""

    digest: Optional[str] = None
    log: Optional[list[str]] = None
    status: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class ExposedOpenfaasDeploySpec(WireModel):
    """The deploy spec a deploy job applied."""

    service: Optional[str] = None
    image: Optional[str] = None
    namespace: Optional[str] = None
    labels: Optional[dict[str, str]] = None
    annotations: Optional[dict[str, str]] = None
    limits: Optional[ResourceLimits] = None
    requests: Optional[ResourceLimits] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class DeployResult(WireModel):
    """The result of a deploy job."""

    deploy_spec: Optional[ExposedOpenfaasDeploySpec] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class VerifyResult(WireModel):
    """The result of a verify job."""

    healthy: Optional[bool] = None
    replicas: Optional[_Number] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class UndeployResult(WireModel):
    """The result of an undeploy job: what was removed."""

    deployment: Optional[bool] = None
    assets: Optional[bool] = None
    registration: Optional[bool] = None
    image: Optional[bool] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


#: The result of a scale job is a free-form object.
ScaleResult = dict[str, Any]


@dataclass(frozen=True)
class BatchResult(WireModel):
    """The result of a batch job."""

    job_count: Optional[_Number] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class CleanupResult(WireModel):
    """The result of a cleanup job."""

    scheduled_job: Optional[JobReference] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class NotifyResult(WireModel):
    """The result of a notify job."""

    operation: Union[RequestOperation, str, None] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


#: A JSON value as ``json.loads`` gives it (the request or result of a loose job type).
JsonValue = Union[dict[str, Any], list[Any], str, int, float, bool]

JobRequest = Union[BuildArgs, DeployArgs, VerifyArgs, UndeployArgs, ScaleArgs, BatchArgs, JsonValue]
JobResult = Union[
    BuildResult,
    DeployResult,
    VerifyResult,
    UndeployResult,
    BatchResult,
    CleanupResult,
    NotifyResult,
    JsonValue,
]

_REQUESTS: dict[str, type] = {
    "build": BuildArgs,
    "deploy": DeployArgs,
    "verify": VerifyArgs,
    "undeploy": UndeployArgs,
    "scale": ScaleArgs,
    "batch": BatchArgs,
}
_RESULTS: dict[str, type] = {
    "build": BuildResult,
    "deploy": DeployResult,
    "verify": VerifyResult,
    "undeploy": UndeployResult,
    "scale": dict,
    "batch": BatchResult,
    "cleanup": CleanupResult,
    "notify": NotifyResult,
}


#: Job types whose request and result the spec leaves loose: a value that is not an object
#: (``"ok"``, ``3``, a list) stays the plain JSON value instead of failing the decode.
_LOOSE_TYPES = frozenset({"notify", "cleanup", "scale"})


def _by_job_type(table: dict[str, type], job_type: Any, value: Any, path: str) -> Any:
    """Decode a request or result by job type. A type without a model keeps the plain JSON
    value; so does a loose type (notify, cleanup, scale) whose value is not an object."""
    model = table.get(job_type) if isinstance(job_type, str) else None
    if model is None or model is dict or (job_type in _LOOSE_TYPES and not _is_mapping(value)):
        return value
    return _plan(model).decoder(value, path)


def _is_mapping(value: Any) -> bool:
    return value.__class__ is dict or isinstance(value, Mapping)


def _request_hook(value: Any, path: str, od: dict[str, Any]) -> Any:
    return _by_job_type(_REQUESTS, od["type"], value, path)


def _result_hook(value: Any, path: str, od: dict[str, Any]) -> Any:
    return _by_job_type(_RESULTS, od["type"], value, path)


# -- list and get ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSummary(WireModel):
    """One job in a list response (any job type, including notify and cleanup)."""

    type: Union[JobType, str] = field(metadata=_REQUIRED)
    id: Optional[str] = None
    operation: Optional[str] = None
    created_by: Optional[str] = None
    created_at: _Time = None
    processed_at: _Time = None
    finished_at: Union[datetime, Any] = None
    attempts_made: Optional[_Number] = None
    state: Union[JobState, str, None] = None
    function: Optional[FunctionRef] = None
    links: Optional[Links] = field(default=None, metadata=_LINKS)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)

    @property
    def ref(self) -> JobReference:
        """The job's type and id."""
        return JobReference(type=self.type, id=self.id)


@dataclass(frozen=True)
class JobsResponse(WireModel):
    """The list response."""

    jobs: list[JobSummary] = field(metadata=_REQUIRED)
    limit: Optional[_Number] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class JobDetails(WireModel):
    """The status of one job (``job`` in a get response; the spec's ``*JobStatus`` variants).

    ``request`` and ``result`` are decoded by ``type`` (``BuildArgs``/``BuildResult``, ...). A
    scale result, the request and result of a job type without a model (unknown types, a
    notify or cleanup request), and a notify, cleanup or scale request or result that is not
    an object (``"ok"``, ``3``, a list) stay plain JSON values.
    """

    type: Union[JobType, str] = field(metadata=_REQUIRED)
    job: JobStatus = field(metadata=_REQUIRED)
    operation: Optional[str] = None
    created_by: Optional[str] = None
    created_at: _Time = None
    processed_at: _Time = None
    finished_at: Union[datetime, Any] = None
    attempts_made: Optional[_Number] = None
    state: Union[JobState, str, None] = None
    request: Optional[JobRequest] = field(default=None, metadata=_hook(_request_hook))
    result: Optional[JobResult] = field(default=None, metadata=_hook(_result_hook))
    function: Optional[FunctionRef] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)

    @property
    def ref(self) -> JobReference:
        """The job's type and id (``job.id``)."""
        return JobReference(type=self.type, id=self.job.id)


@dataclass(frozen=True)
class JobResponse(WireModel):
    """The get response."""

    job: JobDetails = field(metadata=_REQUIRED)
    links: Optional[Links] = field(default=None, metadata=_LINKS)
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)

    @property
    def ref(self) -> JobReference:
        """The job's type and id."""
        return self.job.ref


def decode_jobs_response(document: Any) -> JobsResponse:
    """Decode a parsed list response; raises :class:`DecodeError` when its shape is wrong."""
    return JobsResponse.from_wire(document)


def decode_job_response(document: Any) -> JobResponse:
    """Decode a parsed get response; raises :class:`DecodeError` when its shape is wrong."""
    return JobResponse.from_wire(document)


# -- event payloads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveEventData(WireModel):
    """The payload of an ``active`` event."""

    prev: Union[QueueEvent, str, None] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class WaitingEventData(WireModel):
    """The payload of a ``waiting`` event."""

    prev: Union[QueueEvent, str, None] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class CompletedEventData(WireModel):
    """The payload of a ``completed`` event; ``returnvalue`` is decoded by the job's type, as
    :attr:`JobDetails.result` is (so it may be a plain JSON value)."""

    prev: Union[QueueEvent, str, None] = None
    returnvalue: Optional[JobResult] = field(default=None, metadata=_hook(_raw))
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class FailedEventData(WireModel):
    """The payload of a ``failed`` event."""

    prev: Union[QueueEvent, str, None] = None
    failed_reason: Optional[str] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


@dataclass(frozen=True)
class DelayedEventData(WireModel):
    """The payload of a ``delayed`` event (``delay``: probably the epoch ms of the next try)."""

    delay: Optional[_Number] = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)


#: The payload of a ``waiting-children`` event is a free-form object (``{}`` in practice).
WaitingChildrenEventData = dict[str, Any]

JobEventPayload = Union[
    ActiveEventData,
    WaitingEventData,
    CompletedEventData,
    FailedEventData,
    DelayedEventData,
    dict[str, Any],
]

_PAYLOADS: dict[str, type] = {
    "active": ActiveEventData,
    "waiting": WaitingEventData,
    "completed": CompletedEventData,
    "failed": FailedEventData,
    "delayed": DelayedEventData,
    "waiting-children": dict,
}

#: The names of the events that carry a JSON job event (the job's new state).
JOB_EVENT_NAMES: frozenset[str] = frozenset(_PAYLOADS)


@dataclass(frozen=True)
class JobEventData(WireModel):
    """The JSON envelope of a job event: which job, the per-event ``data``, when, on what.

    ``data`` is decoded by the event name given to :meth:`from_wire` (``parse_event`` gives it);
    without one it stays the plain object. ``function`` is ``None`` for batch jobs.
    """

    job: JobReference = field(metadata=_REQUIRED)
    data: JobEventPayload = field(metadata=_hook(_raw, required=True))
    # Decoded on first access: links and function are half the decoding cost of an event,
    # and a loop that follows events rarely looks at them.
    links: Optional[Links] = field(default=None, metadata={**_LINKS, **_lazy(_is_links)})
    timestamp: _Time = None
    function: Optional[FunctionRef] = field(default=None, metadata=_lazy(_is_object))
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, metadata=_EXTRA)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], event: Optional[str] = None) -> JobEventData:
        """Decode an event envelope; ``event`` (the SSE event name) selects the payload model."""
        decoded: JobEventData = _plan(cls).decoder(data, cls.__name__)
        payload = _PAYLOADS.get(event) if event is not None else None
        raw = decoded.data
        path = f"{cls.__name__}.data"
        if payload is None or payload is dict:
            if not isinstance(raw, dict):
                raise _shape_error("an object", path, raw)
            return decoded
        value = _plan(payload).decoder(raw, path)
        if payload is CompletedEventData and value.returnvalue is not None:
            value.__dict__["returnvalue"] = _by_job_type(
                _RESULTS, decoded.job.type, value.returnvalue, f"{path}.returnvalue"
            )
        decoded.__dict__["data"] = value
        return decoded


_make_lazy(JobEventData)


# -- stream events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One server-sent event: its wire name, its data and its SSE ``id`` (when one was sent)."""

    event: str
    data: Any
    id: Optional[str] = None


@dataclass(frozen=True)
class AckEvent(Event):
    """``ack``: the subscription is active; ``data`` is the server's text."""

    data: str


@dataclass(frozen=True)
class KeepAliveEvent(Event):
    """``keep-alive``: a heartbeat; ``data`` is the server's text (may be empty)."""

    data: str


@dataclass(frozen=True)
class CloseEvent(Event):
    """``close``: the job named in the subscription is done; the stream ends after it."""

    data: str


@dataclass(frozen=True)
class JobEvent(Event):
    """A job changed state: ``active``, ``completed``, ``failed``, ``delayed``, ``waiting`` or
    ``waiting-children`` (the event name *is* the new state)."""

    data: JobEventData

    @property
    def job_type(self) -> Union[JobType, str]:
        """The type of the job the event is about (a child job with ``children=true``)."""
        return self.data.job.type

    @property
    def job_id(self) -> Optional[str]:
        """The id of the job the event is about."""
        return self.data.job.id

    @property
    def state(self) -> Union[JobState, str]:
        """The state the event announces."""
        return _STATES.get(self.event, self.event)


@dataclass(frozen=True)
class UnknownEvent(Event):
    """An event with a name this library does not know; ``data`` is the raw text."""

    data: str


_STATES: dict[str, JobState] = {state.value: state for state in JobState}
_TEXT_EVENTS: dict[str, type[Event]] = {
    "ack": AckEvent,
    "keep-alive": KeepAliveEvent,
    "close": CloseEvent,
}


def parse_event(name: str, data: str, id: Optional[str] = None) -> Event:
    """Turn one server-sent event (name, data text, id) into an :class:`Event`.

    The six job events are decoded from JSON into a :class:`JobEvent`; data that is not JSON, or
    not a job event envelope, raises :class:`~waylay_jobs.EventDecodeError`. Any other name gives
    an :class:`UnknownEvent`.
    """
    text_event = _TEXT_EVENTS.get(name)
    if text_event is not None:
        return text_event(name, data, id)
    if name not in JOB_EVENT_NAMES:
        return UnknownEvent(name, data, id)
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise EventDecodeError(
            f"expected JSON in the data of the {name!r} event, got invalid JSON ({exc}): "
            f"{_shown(data)}",
            event=name,
            snippet=data[:_SNIPPET],
        ) from exc
    try:
        payload = JobEventData.from_wire(document, event=name)
    except DecodeError as exc:
        raise EventDecodeError(
            f"the data of the {name!r} event is not a job event: {exc}; data: {_shown(data)}",
            event=name,
            snippet=data[:_SNIPPET],
        ) from exc
    # What the frozen dataclass __init__ does, minus its object.__setattr__ per field: this
    # runs once per event.
    event = _new(JobEvent)
    event.__dict__.update(event=name, data=payload, id=id)
    return event


_new = object.__new__


def _shown(data: str) -> str:
    return f"{data[:_SNIPPET]!r}{'...' if len(data) > _SNIPPET else ''}"
