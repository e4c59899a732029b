"""``WireModel.schema()``: a marshmallow schema that loads and dumps with the wire codecs.

dataclasses-json derives its schema from the field types, which cannot express the per-job-type
unions, the unknown keys kept in ``extra`` or exact round-trips. Imported only by ``schema()``:
marshmallow is 10 ms of imports (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

import marshmallow

from ._exceptions import DecodeError


class WireSchema(marshmallow.Schema):
    """Loads a document with ``model.from_wire`` and dumps a model with ``to_wire``."""

    class Meta:
        unknown = marshmallow.INCLUDE

    model: Any = None

    def load(self, data: Any, *, many: Optional[bool] = None, **kwargs: Any) -> Any:
        """Decode ``data`` (a list of documents when ``many``)."""
        try:
            if not (self.many if many is None else many):
                return self.model.from_wire(data)
            if not isinstance(data, Sequence) or isinstance(data, (str, bytes, Mapping)):
                raise marshmallow.ValidationError("expected a list of documents")
            return [self.model.from_wire(item) for item in data]
        except DecodeError as exc:
            raise marshmallow.ValidationError({exc.path or "_schema": [str(exc)]}) from exc

    def dump(self, obj: Any, *, many: Optional[bool] = None) -> Any:
        """Encode a model (a list of models when ``many``)."""
        many = self.many if many is None else many
        return [item.to_wire() for item in obj] if many else obj.to_wire()


def wire_schema(model: type, *, many: bool = False, **kwargs: Any) -> WireSchema:
    """A :class:`WireSchema` instance for ``model`` (``kwargs`` go to marshmallow)."""
    kwargs.pop("infer_missing", None)
    schema_class = type(f"{model.__name__}Schema", (WireSchema,), {"model": model})
    return schema_class(many=many, **kwargs)  # type: ignore[no-any-return]
