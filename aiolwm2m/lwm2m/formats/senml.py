"""SenML JSON (110) and SenML CBOR (112), RFC 8428 with the LwM2M rules.

Labels used: base name ``bn``, base time ``bt``, name ``n``, time ``t``, and one value per
record: ``v`` (number: integers, unsigned, floats, times), ``vs`` (string, core link),
``vb`` (boolean), ``vd`` (opaque: base64url without padding in JSON, a byte string in CBOR)
and ``vlo`` (object link ``"oid:iid"``, the LwM2M extension; its CBOR label is the text
``"vlo"``, since no integer label is registered). CBOR labels: bn -2, bt -3, n 0, v 2, vs 3,
vb 4, t 6, vd 8.

Decoding rejects unknown labels, must-understand labels (ending in ``_``), the sum and
base-value labels (``s``, ``bs``, ``bv``: ignoring them would change values), records with
two values, and labels of the wrong JSON/CBOR type. Units (``u``, ``bu``), ``bver`` and
``ut`` carry nothing LwM2M needs and are ignored.

Encoding writes one ``bn`` (on the first record) and relative names when a node has more than
one value, and full names otherwise; integers stay integers, and CBOR floats take their
shortest exact width.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from ..errors import InvalidPath, InvalidPayload, InvalidValue, PathNotAllowed, shown
from ..model.registry import ModelRegistry
from ..nodes import (
    LwM2MObject,
    MultipleResource,
    Node,
    ObjectInstance,
    Resource,
    ResourceInstance,
    SingleResource,
    TimestampedNodes,
    instance_from_values,
    instance_trusted,
    multiple_trusted,
    node_matches_path,
    object_trusted,
)
from ..path import LwM2MPath, path_from_trusted_ids
from ..values import (
    INT64_MAX,
    INT64_MIN,
    ObjectLink,
    ResourceType,
    Value,
    time_to_seconds,
)
from . import plans
from .cbor_support import (
    MAJOR_ARRAY,
    SMALL_UINTS,
    ShortFloat,
    dump,
    head,
    load_one,
    text_item,
    utc_seconds,
    value_item,
)
from .content_format import ContentFormat
from .json_unicode import lone_surrogate
from .tree_assembly import Leaf, assemble, group_leaves, omits_instance
from .value_mapping import (
    Kind,
    ValueMapper,
    b64url_decode,
    b64url_encode,
)
from .value_mapping import (
    identity_converter as _identity,
)

__all__ = [
    "decode_senml",
    "decode_senml_composite",
    "decode_senml_create",
    "decode_senml_paths",
    "decode_senml_timestamped",
    "encode_senml",
    "encode_senml_composite",
    "encode_senml_create",
    "encode_senml_paths",
    "encode_senml_timestamped",
]

_MISSING: Final = object()
_new_tuple = tuple.__new__
_NUMBER_TYPES: Final = (int, float)

# Roles of labels in a record.
_BN, _BT, _N, _T, _VALUE, _IGNORED = range(6)


class _Dialect:
    """Label spellings and value representations of one SenML serialisation."""

    __slots__ = (
        "bn",
        "bt",
        "fmt",
        "labels",
        "n",
        "names",
        "names_key",
        "opaque_is_text",
        "plain_types",
        "shapes",
        "t",
        "value_keys",
    )

    def __init__(
        self, fmt: int, keys: Mapping[str, Any], ignored: Iterable[Any], opaque_is_text: bool
    ) -> None:
        self.fmt = fmt
        self.names_key = f"senml-names-{fmt}"
        self.opaque_is_text = opaque_is_text
        self.bn, self.bt, self.n, self.t = keys["bn"], keys["bt"], keys["n"], keys["t"]
        self.names: dict[Any, str] = {key: name for name, key in keys.items()}
        labels: dict[Any, tuple[int, int]] = {
            keys["bn"]: (_BN, -1),
            keys["bt"]: (_BT, -1),
            keys["n"]: (_N, -1),
            keys["t"]: (_T, -1),
            keys["v"]: (_VALUE, Kind.NUMBER),
            keys["vs"]: (_VALUE, Kind.STRING),
            keys["vb"]: (_VALUE, Kind.BOOLEAN),
            keys["vd"]: (_VALUE, Kind.OPAQUE),
            keys["vlo"]: (_VALUE, Kind.OBJLNK),
        }
        for key in ignored:
            labels[key] = (_IGNORED, -1)
        self.labels = labels
        # record key tuple -> (value key or _MISSING, kind, has bn, has bt, has t)
        self.shapes: dict[tuple[Any, ...], tuple[Any, int, bool, bool, bool]] = {}
        self.value_keys: dict[ResourceType, Any] = {
            ResourceType.STRING: keys["vs"],
            ResourceType.CORELNK: keys["vs"],
            ResourceType.INTEGER: keys["v"],
            ResourceType.UNSIGNED_INTEGER: keys["v"],
            ResourceType.FLOAT: keys["v"],
            ResourceType.TIME: keys["v"],
            ResourceType.BOOLEAN: keys["vb"],
            ResourceType.OPAQUE: keys["vd"],
            ResourceType.OBJLNK: keys["vlo"],
        }

    def shape(self, record: dict[Any, Any], index: int) -> tuple[Any, int, bool, bool, bool]:
        keys = tuple(record)
        found = self.shapes.get(keys)
        if found is not None:
            return found
        value_key: Any = _MISSING
        kind = -1
        for key in keys:
            role = self.labels.get(key)
            if role is None:
                label = shown(key if isinstance(key, str) else shown(key, 24), 24)
                if isinstance(key, str) and key.endswith("_"):
                    reason = f"must-understand label {label} is not supported"
                else:
                    reason = f"unknown or unsupported label {label}"
                raise InvalidPayload(self.fmt, None, reason, index=index)
            if role[0] == _VALUE:
                if value_key is not _MISSING:
                    raise InvalidPayload(
                        self.fmt,
                        None,
                        f"conflicting values {self.names[value_key]!r} and {self.names[key]!r}",
                        index=index,
                    )
                value_key, kind = key, role[1]
        names = self.names
        result = (
            value_key,
            kind,
            any(names.get(k) == "bn" for k in keys),
            any(names.get(k) == "bt" for k in keys),
            any(names.get(k) == "t" for k in keys),
        )
        if len(self.shapes) < 512:
            self.shapes[keys] = result
        return result


JSON_DIALECT: Final = _Dialect(
    ContentFormat.SENML_JSON,
    {
        "bn": "bn",
        "bt": "bt",
        "n": "n",
        "t": "t",
        "v": "v",
        "vs": "vs",
        "vb": "vb",
        "vd": "vd",
        "vlo": "vlo",
    },
    ("u", "bu", "bver", "ut"),
    opaque_is_text=True,
)
CBOR_DIALECT: Final = _Dialect(
    ContentFormat.SENML_CBOR,
    {"bn": -2, "bt": -3, "n": 0, "t": 6, "v": 2, "vs": 3, "vb": 4, "vd": 8, "vlo": "vlo"},
    (1, -4, -1, 7),
    opaque_is_text=False,
)


def _dialect(fmt: int) -> _Dialect:
    return JSON_DIALECT if fmt == ContentFormat.SENML_JSON else CBOR_DIALECT


# --- names ---------------------------------------------------------------------------------------
_NAME_CACHE: dict[str, LwM2MPath] = {}


def _parse_name(fmt: int, name: str, index: int) -> LwM2MPath:
    path = _NAME_CACHE.get(name)
    if path is not None:
        return path
    try:
        path = LwM2MPath.parse(name)
    except InvalidPath as exc:
        raise InvalidPayload(
            fmt, None, f"name {shown(name, 40)}: {exc.reason}", index=index
        ) from None
    if len(_NAME_CACHE) >= 4096:
        _NAME_CACHE.clear()
    _NAME_CACHE[name] = path
    return path


# --- parsing -------------------------------------------------------------------------------------
# index, path, kind (-1: no value), raw value, time (bt + t)
_Record = tuple[int, LwM2MPath, int, Any, float]


def _load(dialect: _Dialect, payload: bytes) -> list[Any]:
    fmt = dialect.fmt
    if dialect.opaque_is_text:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPayload(fmt, None, "not UTF-8", offset=exc.start) from None
        document = _decode_json(text)
        if document is _MISSING:
            document = _load_json_checked(fmt, text)
        if lone_surrogate(text, document):
            raise InvalidPayload(fmt, None, "malformed JSON: a string escapes a lone "
                                 "surrogate (not Unicode text)")
    else:
        document = load_one(fmt, payload)
    if type(document) is not list:
        raise InvalidPayload(fmt, None, "a SenML pack must be an array of records")
    return document


def _decode_json(text: str) -> Any:
    """The JSON document in ``text``; _MISSING for anything but a clean, exact parse."""
    # json.loads builds a decoder per call when given options; this one is built once.
    try:
        document, end = _JSON_DECODER.raw_decode(text)
    except (ValueError, RecursionError):
        return _MISSING
    return document if end == len(text) else _MISSING


def _load_json_checked(fmt: int, text: str) -> Any:
    """``json.loads``, turning every failure into :class:`InvalidPayload`."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise InvalidPayload(fmt, None, "JSON nesting too deep") from None
    except ValueError as exc:
        offset = getattr(exc, "pos", None)
        raise InvalidPayload(fmt, None, f"malformed JSON: {exc}", offset=offset) from None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


_JSON_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


# Times (bt, t) are seconds; anything beyond 2**53 s (285 million years, and the limit of
# exact integers in a double) is no time, and would overflow float conversions downstream.
_MAX_TIME: Final = 2**53


def _is_time(value: object) -> bool:
    value_type = type(value)
    if value_type is int:
        return -_MAX_TIME <= value <= _MAX_TIME  # type: ignore[operator]
    return value_type is float and -_MAX_TIME <= value <= _MAX_TIME  # type: ignore[operator]


def _parse_records(
    dialect: _Dialect, payload: bytes, *, values: bool, min_depth: int = 3
) -> Iterator[_Record]:
    """The records of a pack; a value must stand ``min_depth`` levels deep or deeper (a
    resource; 2 for a Create without instance id, whose names skip the instance level)."""
    fmt = dialect.fmt
    base_name = ""
    base_time: float = 0
    bn_key, bt_key, n_key, t_key = dialect.bn, dialect.bt, dialect.n, dialect.t
    for index, record in enumerate(_load(dialect, payload)):
        if type(record) is not dict:
            raise InvalidPayload(fmt, None, "a SenML record must be a map", index=index)
        value_key, kind, has_bn, has_bt, has_t = dialect.shape(record, index)
        if has_bn:
            base_name = record[bn_key]
            if type(base_name) is not str:
                raise InvalidPayload(fmt, None, "base name is not a string", index=index)
        if has_bt:
            base_time = record[bt_key]
            if not _is_time(base_time):
                raise InvalidPayload(fmt, None, "base time is not a number of seconds",
                                     index=index)
        name = record.get(n_key, "")
        if type(name) is not str:
            raise InvalidPayload(fmt, None, "name is not a string", index=index)
        time = base_time
        if has_t:
            offset = record[t_key]
            if not _is_time(offset):
                raise InvalidPayload(fmt, None, "time is not a number of seconds", index=index)
            time = base_time + offset
        path = _parse_name(fmt, base_name + name, index)
        if value_key is _MISSING:
            if values:
                raise InvalidPayload(fmt, path, "the record has no value", index=index)
            yield index, path, -1, None, time
            continue
        if not values:
            raise InvalidPayload(
                fmt, path, "a path list record must not carry a value", index=index
            )
        raw = record[value_key]
        if kind == Kind.NUMBER:
            if type(raw) not in _NUMBER_TYPES:
                raise InvalidPayload(fmt, path, "'v' is not a number", index=index)
        elif kind == Kind.STRING or kind == Kind.OBJLNK:
            if type(raw) is not str:
                raise InvalidPayload(
                    fmt, path, f"{dialect.names[value_key]!r} is not a string", index=index
                )
        elif kind == Kind.BOOLEAN:
            if type(raw) is not bool:
                raise InvalidPayload(fmt, path, "'vb' is not a boolean", index=index)
        elif dialect.opaque_is_text:
            try:
                raw = b64url_decode(raw)
            except ValueError as exc:
                raise InvalidPayload(
                    fmt, path, f"'vd' is not base64url: {exc}", index=index
                ) from None
        elif type(raw) is not bytes:
            raise InvalidPayload(fmt, path, "'vd' is not a byte string", index=index)
        if len(path) < min_depth:
            raise InvalidPayload(
                fmt, path, "a value must name a resource or resource instance", index=index
            )
        yield index, path, kind, raw, time


def _leaves(
    dialect: _Dialect, records: Iterable[_Record], model: ModelRegistry | None
) -> list[Leaf]:
    convert = ValueMapper(dialect.fmt, model).convert
    leaves: list[Leaf] = []
    for index, path, kind, raw, _ in records:
        rtype, value, info = convert(path, kind, raw, index)
        leaves.append((path, rtype, value, info, index))
    return leaves


def decode_senml(fmt: int, payload: bytes, path: LwM2MPath, model: ModelRegistry | None) -> Node:
    dialect = _dialect(fmt)
    if len(path) in (1, 2):
        document = _load(dialect, payload)
        if len(path) == 2:
            plan = plans.object_plan(model, path[0])
            if plan is not None:
                plain = _instance_plain(dialect, document, path, plan)
                if plain is not None:
                    return plain
        return _decode_container(dialect, document, path, model)
    leaves = _leaves(dialect, _parse_records(dialect, payload, values=True), model)
    base_info = ValueMapper(fmt, model).info(path) if path else None
    return assemble(fmt, path, leaves, base_info)


# (instance id, resource id, resource instance id or -1, type code, value label) of a record
# name, for the names of defined resources of one object.
_PlainName = tuple[int, int, int, int, Any]


def _plain_name(
    dialect: _Dialect, name: str, object_id: int, plan: plans.ObjectPlan
) -> _PlainName | None:
    path = _NAME_CACHE.get(name)
    if path is None:
        try:
            path = _parse_name(dialect.fmt, name, 0)
        except InvalidPayload:
            return None
    if not 3 <= len(path) <= 4 or path[0] != object_id:
        return None
    entry = plan.types.get(path[2])
    if entry is None:
        return None
    rtype, code = entry
    value_key = dialect.value_keys.get(rtype)
    if value_key is None:
        return None
    ri = path[3] if len(path) == 4 else -1
    if (ri >= 0) != (code >= plans.MULTIPLE):
        return None
    return (path[1], path[2], ri, code & ~plans.MULTIPLE, value_key)


def _instance_plain(
    dialect: _Dialect,
    document: list[Any],
    base: LwM2MPath,
    plan: plans.ObjectPlan,
) -> Node | None:
    """An instance from records of defined resources, or None to leave it to the general path.

    It takes records ``{n, value}``, optionally with ``bn`` first, naming resources of the
    base instance with the value label their type uses, and gives up on anything else (times,
    other labels, errors), which :func:`_decode_container` then decides and reports. The value
    label is known from the name, so a record's keys need no inspection beyond counting.
    """
    names: dict[str, _PlainName] | None = plan.scratch.get(dialect.names_key)
    if names is None:
        names = plan.scratch[dialect.names_key] = {}
    object_id, iid = base[0], base[1]
    bn_key, n_key = dialect.bn, dialect.n
    text_opaque = dialect.opaque_is_text
    values: dict[int, object] = {}
    multiples: dict[int, dict[int, Value]] = {}
    base_name = ""
    try:
        for record in document:
            if type(record) is not dict:
                return None
            if len(record) != 2:
                if len(record) != 3 or bn_key not in record:
                    return None
                base_name = record[bn_key]
            full_name = base_name + record[n_key]
            entry = names.get(full_name)
            if entry is None:
                entry = _plain_name(dialect, full_name, object_id, plan)
                if entry is None:
                    return None
                if len(names) < 4096:
                    names[full_name] = entry
            name_iid, rid, ri, code, value_key = entry
            value = record[value_key]
            if name_iid != iid:
                return None
            if code == plans.STRING:
                if type(value) is not str:
                    return None
            elif code == plans.INTEGER:
                if type(value) is not int or not INT64_MIN <= value <= INT64_MAX:
                    return None
            else:
                value = plans.plain_value(code, value, text_opaque)
                if value is plans.NOT_PLAIN:
                    return None
            if ri < 0:
                if rid in values:
                    return None
                values[rid] = value
                continue
            instances = multiples.get(rid)
            if instances is None:
                if rid in values:
                    return None
                values[rid] = multiples[rid] = {ri: value}
            elif ri in instances:
                return None
            else:
                instances[ri] = value
    except (KeyError, TypeError):
        return None
    return instance_from_values(iid, values, plan.rtypes)


# Python types each value kind must have on the wire (opaque: text in JSON, bytes in CBOR).
_KIND_TYPES: Final = ((int, float), (str,), (bool,), (bytes,), (str,))
_JSON_KIND_TYPES: Final = ((int, float), (str,), (bool,), (str,), (str,))


# path, object id, instance id, resource id, resource instance id (-1: none), model entry
_NameEntry = tuple[LwM2MPath, int, int, int, int, ResourceType | None, bool | None, tuple[Any, ...]]


def _name_entry(fmt: int, mapper: ValueMapper, name: str, index: int) -> _NameEntry:
    path = _parse_name(fmt, name, index)
    if len(path) < 3:
        raise InvalidPayload(
            fmt, path, "a value must name a resource or resource instance", index=index
        )
    rtype, multiple, converters = mapper.entry(path)
    ri = path[3] if len(path) == 4 else -1
    return (path, path[0], path[1], path[2], ri, rtype, multiple, converters)


def _decode_container(
    dialect: _Dialect, document: list[Any], base: LwM2MPath, model: ModelRegistry | None
) -> Node:
    """Object or object instance decoding in one pass (the hot path of Read responses).

    It does what :func:`_parse_records` + :func:`assemble` do, with the per-name work (path
    parsing, model lookup) cached and the nodes built straight into their parent dicts.
    """
    fmt = dialect.fmt
    mapper = ValueMapper(fmt, model)
    kind_types = _JSON_KIND_TYPES if dialect.opaque_is_text else _KIND_TYPES
    text_opaque = dialect.opaque_is_text
    shapes = dialect.shapes
    bn_key, bt_key, n_key, t_key = dialect.bn, dialect.bt, dialect.n, dialect.t
    depth = len(base)
    base_object = base[0]
    base_instance = base[1] if depth == 2 else -1
    # Everything derived from a record name, cached per model: path and model entry.
    names: dict[str, _NameEntry] = mapper.scratch("senml-names")  # type: ignore[assignment]
    instances: dict[int, dict[int, Resource]] = {}
    multiples: dict[tuple[int, int], tuple[ResourceType, dict[int, Value]]] = {}
    base_name = ""
    for index, record in enumerate(document):
        if type(record) is not dict:
            raise InvalidPayload(fmt, None, "a SenML record must be a map", index=index)
        shape = shapes.get(tuple(record))
        if shape is None:
            shape = dialect.shape(record, index)
        value_key, kind, has_bn, has_bt, has_t = shape
        if has_bn:
            base_name = record[bn_key]
            if type(base_name) is not str:
                raise InvalidPayload(fmt, None, "base name is not a string", index=index)
        if has_bt and type(record[bt_key]) not in _NUMBER_TYPES:
            raise InvalidPayload(fmt, None, "base time is not a number", index=index)
        if has_t and type(record[t_key]) not in _NUMBER_TYPES:
            raise InvalidPayload(fmt, None, "time is not a number", index=index)
        name = record.get(n_key, "")
        if type(name) is not str:
            raise InvalidPayload(fmt, None, "name is not a string", index=index)
        full_name = base_name + name
        entry = names.get(full_name)
        if entry is None:
            entry = _name_entry(fmt, mapper, full_name, index)
            if len(names) < 4096:
                names[full_name] = entry
        path, oid, iid, rid, ri, rtype, multiple, converters = entry
        if value_key is _MISSING:
            raise InvalidPayload(fmt, path, "the record has no value", index=index)
        raw = record[value_key]
        if type(raw) not in kind_types[kind]:
            label = dialect.names[value_key]
            raise InvalidPayload(fmt, path, f"{label!r} has the wrong type", index=index)
        if oid != base_object or (base_instance >= 0 and iid != base_instance):
            raise PathNotAllowed(fmt, path, f"is outside the request path {base}", index=index)
        if kind == Kind.OPAQUE and text_opaque:
            try:
                raw = b64url_decode(raw)
            except ValueError as exc:
                raise InvalidPayload(
                    fmt, path, f"'vd' is not base64url: {exc}", index=index
                ) from None
        if rtype is None:
            try:
                rtype, value = mapper.derive(kind, raw)
            except ValueError as exc:
                raise InvalidValue(
                    fmt, path, f"{shown(raw)} is not valid: {exc}", index=index
                ) from None
        else:
            converter = converters[kind]
            if converter is _identity:
                value = raw
            elif converter is None:
                mapper.convert(path, kind, raw, index)  # raises the mismatch error
                raise AssertionError  # pragma: no cover
            else:
                try:
                    value = converter(raw)
                except ValueError as exc:
                    raise InvalidValue(
                        fmt, path, f"{shown(raw)} is not a valid value: {exc}", index=index
                    ) from None
        resources = instances.get(iid)
        if resources is None:
            resources = instances[iid] = {}
        if ri < 0:
            if multiple:
                raise InvalidValue(
                    fmt,
                    path,
                    "the resource is multiple-instance: values need an instance id",
                    index=index,
                )
            if rid in resources:
                raise InvalidPayload(fmt, path, "the path appears twice", index=index)
            resources[rid] = _new_tuple(SingleResource, (rid, rtype, value))
        else:
            if multiple is False:
                raise InvalidValue(
                    fmt,
                    path,
                    "the resource is single-instance: it has no resource instances",
                    index=index,
                )
            key = (iid, rid)
            found = multiples.get(key)
            if found is None:
                if rid in resources:
                    raise InvalidPayload(fmt, path, "the path appears twice", index=index)
                multiples[key] = (rtype, {ri: value})
                resources[rid] = None  # type: ignore[assignment]  # keeps the payload order
            else:
                values = found[1]
                if ri in values:
                    raise InvalidPayload(fmt, path, "the path appears twice", index=index)
                values[ri] = value
    for (iid, rid), (rtype, values) in multiples.items():
        instances[iid][rid] = multiple_trusted(rid, rtype, values)
    if depth == 2:
        return instance_trusted(base[1], instances.get(base[1], {}))
    return object_trusted(
        base[0], {iid: instance_trusted(iid, res) for iid, res in sorted(instances.items())}
    )


def decode_senml_create(
    fmt: int, payload: bytes, path: LwM2MPath, model: ModelRegistry | None, free_id: int
) -> Node:
    """The object at ``path`` a Create carries: its records either name the instance
    (``/o/i/r``) or leave it out (``/o/r``, ``/o/r/ri``), and then stand in ``free_id``."""
    dialect = _dialect(fmt)
    records = list(_parse_records(dialect, payload, values=True, min_depth=2))
    oid = path[0]
    for record in records:
        if record[1][0] != oid:
            raise PathNotAllowed(fmt, record[1], f"is outside the request path {path}",
                                 index=record[0])
    if omits_instance(fmt, oid, [record[1] for record in records], model):
        records = [
            (index, path_from_trusted_ids((oid, free_id, *name[1:])), kind, raw, time)
            for index, name, kind, raw, time in records
        ]
    return assemble(fmt, path, _leaves(dialect, records, model))


def decode_senml_composite(
    fmt: int, payload: bytes, paths: list[LwM2MPath] | None, model: ModelRegistry | None
) -> dict[LwM2MPath, Node]:
    dialect = _dialect(fmt)
    leaves = _leaves(dialect, _parse_records(dialect, payload, values=True), model)
    return group_leaves(fmt, leaves, paths)


def decode_senml_timestamped(
    fmt: int, payload: bytes, path: LwM2MPath, model: ModelRegistry | None
) -> list[TimestampedNodes]:
    dialect = _dialect(fmt)
    records = list(_parse_records(dialect, payload, values=True))
    groups: list[tuple[float, list[_Record]]] = []
    for record in records:
        if groups and groups[-1][0] == record[4]:
            groups[-1][1].append(record)
        else:
            groups.append((record[4], [record]))
    out: list[TimestampedNodes] = []
    for time, members in groups:
        leaves = _leaves(dialect, members, model)
        if path:
            nodes: dict[LwM2MPath, Node] = {path: assemble(fmt, path, leaves)}
        else:
            nodes = group_leaves(fmt, leaves, None)
        out.append(TimestampedNodes(None if time == 0 else time, nodes))
    return out


def decode_senml_paths(fmt: int, payload: bytes) -> list[LwM2MPath]:
    dialect = _dialect(fmt)
    return [record[1] for record in _parse_records(dialect, payload, values=False)]


# --- encoding ------------------------------------------------------------------------------------
_ID_TEXT: Final = [str(i) for i in range(256)]


def _id_text(value: int) -> str:
    return _ID_TEXT[value] if value < 256 else str(value)


def _relative_values(node: Node, prefix: str) -> Iterator[tuple[str, ResourceType, Value]]:
    """(relative name, type, value) of every value of ``node``; names start with ``prefix``."""
    if isinstance(node, ObjectInstance):
        for rid, resource in node.resources.items():
            name = prefix + _id_text(rid)
            if isinstance(resource, SingleResource):
                yield name, resource.type, resource.value
            else:
                rtype = resource.type
                name += "/"
                for ri, value in resource.instances.items():
                    yield name + _id_text(ri), rtype, value
    elif isinstance(node, MultipleResource):
        rtype = node.type
        for ri, value in node.instances.items():
            yield prefix + _id_text(ri), rtype, value
    elif isinstance(node, LwM2MObject):
        for iid, instance in node.instances.items():
            yield from _relative_values(instance, prefix + _id_text(iid) + "/")
    else:
        yield prefix.rstrip("/"), node.type, node.value


def _wire_value(dialect: _Dialect, rtype: ResourceType, value: Value) -> Any:
    if rtype is ResourceType.STRING or rtype is ResourceType.CORELNK:
        if type(value) is not str:
            raise ValueError("expected str")
        return value
    if rtype is ResourceType.INTEGER or rtype is ResourceType.UNSIGNED_INTEGER:
        if type(value) is not int:
            raise ValueError("expected int")
        return value
    if rtype is ResourceType.FLOAT:
        if type(value) is not float:
            raise ValueError("expected float")
        return value if dialect.opaque_is_text else ShortFloat(value)
    if rtype is ResourceType.BOOLEAN:
        if type(value) is not bool:
            raise ValueError("expected bool")
        return value
    if rtype is ResourceType.OPAQUE:
        return b64url_encode(value) if dialect.opaque_is_text else bytes(value)  # type: ignore[arg-type]
    if rtype is ResourceType.TIME:
        return time_to_seconds(value)  # type: ignore[arg-type]
    if rtype is ResourceType.OBJLNK:
        return str(value)
    raise ValueError("executable resources carry no value")


# --- writing instances directly ------------------------------------------------------------------
# An instance read is by far the most common payload; its records are written without building
# the record dicts first. Everything unusual (a value of the wrong Python type, a non-finite
# float, a lone surrogate...) returns None and goes through the record dicts, which report it.
_LABEL_OF_CODE: Final = {
    plans.STRING: "vs",
    plans.INTEGER: "v",
    plans.UNSIGNED: "v",
    plans.FLOAT: "v",
    plans.TIME: "v",
    plans.BOOLEAN: "vb",
    plans.OPAQUE: "vd",
    plans.OBJLNK: "vlo",
}
_CBOR_LABELS: Final[dict[str, int | str]] = {"vs": 3, "v": 2, "vb": 4, "vd": 8, "vlo": "vlo"}
# The start of a record up to its value, built on first use, keyed by
# ``resource id << 21 | (resource instance id + 1) << 4 | type code`` (instance id -1: none).
_JSON_HEADS: Final[dict[int, str]] = {}
_CBOR_HEADS: Final[dict[int, bytes]] = {}


def _record_name(rid: int, ri: int) -> str:
    return str(rid) if ri < 0 else f"{rid}/{ri}"


def _json_head(key: int) -> str:
    rid, ri, code = key >> 21, ((key >> 4) & 0x1FFFF) - 1, key & 0x0F
    found = _JSON_HEADS[key] = (
        f'{{"n":{_encode_json_string(_record_name(rid, ri))},"{_LABEL_OF_CODE[code]}":'
    )
    return found


def _cbor_head(key: int) -> bytes:
    rid, ri, code = key >> 21, ((key >> 4) & 0x1FFFF) - 1, key & 0x0F
    label = _CBOR_LABELS[_LABEL_OF_CODE[code]]
    label_item = text_item(label) if isinstance(label, str) else SMALL_UINTS[label]
    found = _CBOR_HEADS[key] = b"\xa2\x00" + text_item(_record_name(rid, ri)) + label_item
    return found


def _json_value(code: int, value: object) -> str | None:
    """The JSON text of a value of type ``code``, or None when it is not plainly valid."""
    value_type = type(value)
    if code == plans.STRING:
        return _encode_json_string(value) if isinstance(value, str) and value_type is str else None
    if code == plans.INTEGER or code == plans.UNSIGNED:
        return int.__repr__(value) if isinstance(value, int) and value_type is int else None
    if code == plans.TIME:
        seconds = utc_seconds(value)
        return None if seconds is None else int.__repr__(seconds)
    if code == plans.FLOAT:
        if isinstance(value, float) and value_type is float and math.isfinite(value):
            return float.__repr__(value)
        return None
    if code == plans.BOOLEAN:
        if value_type is bool:
            return "true" if value else "false"
        return None
    if code == plans.OPAQUE:
        return '"' + b64url_encode(value) + '"' if value_type is bytes else None  # type: ignore[arg-type]
    if code == plans.OBJLNK and value_type is ObjectLink:
        return '"' + str(value) + '"'
    return None


def _instance_json(instance: ObjectInstance, base: str) -> bytes | None:
    """The SenML JSON pack of an instance with two or more values, or None (see above)."""
    heads = _JSON_HEADS
    codes = plans.TYPE_CODES
    encode_string = _encode_json_string
    parts: list[str] = []
    append = parts.append
    try:
        for rid, resource in instance.resources.items():
            code = codes[resource[1]]
            if type(resource) is SingleResource:
                value = resource[2]
                if code == plans.STRING and type(value) is str:
                    text: str | None = encode_string(value)
                else:
                    text = _json_value(code, value)
                    if text is None:
                        return None
                key = rid << 21 | code
                record_head = heads.get(key) or _json_head(key)
                append(record_head + text + "}")  # type: ignore[operator]
                continue
            for ri, value in resource[2].items():  # type: ignore[union-attr]
                if code == plans.INTEGER and type(value) is int:
                    text = int.__repr__(value)
                else:
                    text = _json_value(code, value)
                    if text is None:
                        return None
                key = rid << 21 | (ri + 1) << 4 | code
                record_head = heads.get(key) or _json_head(key)
                append(record_head + text + "}")
        if len(parts) < 2:
            return None
        parts[0] = '{"bn":' + encode_string(base) + "," + parts[0][1:]
        return ("[" + ",".join(parts) + "]").encode("utf-8")
    except UnicodeEncodeError:
        return None


def _instance_cbor(instance: ObjectInstance, base: str) -> bytes | None:
    """The SenML CBOR pack of an instance with two or more values, or None (see above)."""
    heads = _CBOR_HEADS
    codes = plans.TYPE_CODES
    small_uints = SMALL_UINTS
    parts: list[bytes] = [b""]
    append = parts.append
    try:
        for rid, resource in instance.resources.items():
            code = codes[resource[1]]
            if type(resource) is SingleResource:
                value = resource[2]
                if code == plans.STRING and type(value) is str:
                    item: bytes | None = text_item(value)
                else:
                    item = value_item(code, value)
                    if item is None:
                        return None
                key = rid << 21 | code
                append(heads.get(key) or _cbor_head(key))
                append(item)  # type: ignore[arg-type]
                continue
            for ri, value in resource[2].items():  # type: ignore[union-attr]
                if code == plans.INTEGER and type(value) is int and 0 <= value <= 0xFF:
                    item = small_uints[value]
                else:
                    item = value_item(code, value)
                    if item is None:
                        return None
                key = rid << 21 | (ri + 1) << 4 | code
                append(heads.get(key) or _cbor_head(key))
                append(item)
    except UnicodeEncodeError:
        return None
    count = (len(parts) - 1) // 2
    if count < 2:
        return None
    parts[1] = b"\xa3\x21" + text_item(base) + parts[1][1:]
    parts[0] = head(MAJOR_ARRAY, count)
    return b"".join(parts)


def _records_for(
    dialect: _Dialect,
    values: Iterable[tuple[str, ResourceType, Value]],
    base: str,
    error_path: object,
) -> list[dict[Any, Any]]:
    name_key = dialect.n
    value_keys = dialect.value_keys
    records: list[dict[Any, Any]] = []
    for name, rtype, value in values:
        if rtype is ResourceType.STRING and type(value) is str:
            wire: Any = value
        else:
            try:
                wire = _wire_value(dialect, rtype, value)
            except (ValueError, TypeError, AttributeError) as exc:
                raise InvalidValue(
                    dialect.fmt, f"{base}{name}", f"cannot encode {shown(value)}: {exc}"
                ) from None
        records.append({name_key: name, value_keys[rtype]: wire})
    if base and records:
        first = records[0]
        records[0] = {dialect.bn: base, **first}
    return records


def _json_encoder() -> Callable[[Any], str]:
    """``json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``.

    json.dumps with options builds an encoder per call, which costs as much as encoding a
    small pack; this builds the C encoder once (when the interpreter has one).
    """
    options = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False
    )
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return options.encode
    try:
        chunks = make(
            None,  # markers: no cycle check, packs are flat
            options.default,
            json.encoder.encode_basestring,
            None,  # indent
            ":",
            ",",
            False,  # sort_keys
            False,  # skipkeys
            False,  # allow_nan
        )
        probe = [{"n": "é", "v": 1.5, "vb": True}]
        if "".join(chunks(probe, 0)) != options.encode(probe):
            return options.encode
    except Exception:  # a different private signature: use the public path
        return options.encode

    def encode(obj: Any) -> str:
        return "".join(chunks(obj, 0))

    return encode


_json_dumps: Final = _json_encoder()
_encode_json_string: Final[Callable[[str], str]] = json.encoder.encode_basestring


def _serialise(dialect: _Dialect, records: list[dict[Any, Any]], error_path: object) -> bytes:
    if dialect.opaque_is_text:
        try:
            return _json_dumps(records).encode()
        except ValueError as exc:
            raise InvalidValue(
                dialect.fmt, error_path, f"not representable in JSON: {exc}"
            ) from None
    return dump(records)


def encode_senml(fmt: int, path: LwM2MPath, node: Node) -> bytes:
    dialect = _dialect(fmt)
    problem = node_matches_path(path, node)
    if problem is not None:
        raise PathNotAllowed(fmt, path, problem)
    text = str(path)
    node_type = type(node)
    if node_type is SingleResource or node_type is ResourceInstance:
        records = _records_for(dialect, [("", node.type, node.value)], "", path)  # type: ignore[union-attr]
        records[0][dialect.n] = text
        return _serialise(dialect, records, path)
    if node_type is ObjectInstance:
        if dialect is JSON_DIALECT:
            packed = _instance_json(node, text + "/")  # type: ignore[arg-type]
        else:
            packed = _instance_cbor(node, text + "/")  # type: ignore[arg-type]
        if packed is not None:
            return packed
    values = list(_relative_values(node, ""))
    if len(values) == 1:
        name, rtype, value = values[0]
        records = _records_for(dialect, [(text + "/" + name, rtype, value)], "", path)
    else:
        records = _records_for(dialect, values, text + "/", path)
    return _serialise(dialect, records, path)


def encode_senml_create(fmt: int, path: LwM2MPath, instance: ObjectInstance) -> bytes:
    """A Create of ``instance`` in the object at ``path`` that leaves the instance id to
    the client: records are named ``/o/r`` and ``/o/r/ri``, without the instance level."""
    dialect = _dialect(fmt)
    text = str(path)
    values = list(_relative_values(instance, ""))
    if len(values) == 1:
        name, rtype, value = values[0]
        records = _records_for(dialect, [(text + "/" + name, rtype, value)], "", path)
    else:
        records = _records_for(dialect, values, text + "/", path)
    return _serialise(dialect, records, path)


def _absolute_values(nodes: Mapping[LwM2MPath, Node]) -> Iterator[tuple[str, ResourceType, Value]]:
    for path, node in nodes.items():
        problem = node_matches_path(path, node)
        if problem is not None:
            raise PathNotAllowed(None, path, problem)
        text = str(path)
        if type(node) is SingleResource or type(node) is ResourceInstance:
            yield text, node.type, node.value
        else:
            yield from _relative_values(node, text + "/")


def encode_senml_composite(fmt: int, nodes: Mapping[LwM2MPath, Node]) -> bytes:
    dialect = _dialect(fmt)
    return _serialise(dialect, _records_for(dialect, _absolute_values(nodes), "", None), None)


def encode_senml_timestamped(fmt: int, groups: Iterable[TimestampedNodes]) -> bytes:
    dialect = _dialect(fmt)
    records: list[dict[Any, Any]] = []
    current: float = 0
    for group in groups:
        group_records = _records_for(dialect, _absolute_values(group.nodes), "", None)
        wanted = 0 if group.timestamp is None else group.timestamp
        if group_records and wanted != current:
            first = group_records[0]
            group_records[0] = {dialect.bt: wanted, **first}
            current = wanted
        records.extend(group_records)
    return _serialise(dialect, records, None)


def encode_senml_paths(fmt: int, paths: Iterable[LwM2MPath]) -> bytes:
    dialect = _dialect(fmt)
    return _serialise(dialect, [{dialect.n: str(path)} for path in paths], None)
