"""The LwM2M data model, object definitions and content formats (sans-IO).

Import the pieces from here::

    from aiolwm2m.lwm2m import LwM2MPath, ModelRegistry, ContentFormat, decode_node
"""

from .attributes import (
    AttributeUpdate,
    NotificationAttributes,
    merge_attributes,
    parse_write_attributes,
    validate_attributes,
)
from .errors import (
    CodecError,
    DdfError,
    InvalidAttribute,
    InvalidPath,
    InvalidPayload,
    InvalidValue,
    LwM2MError,
    ModelError,
    PathNotAllowed,
    UnsupportedFormat,
)
from .formats import (
    SUPPORTED_FORMATS,
    ContentFormat,
    decode_composite,
    decode_node,
    decode_paths,
    decode_timestamped,
    encode_composite,
    encode_node,
    encode_paths,
    encode_timestamped,
)
from .model import ModelRegistry, ObjectModel, Operations, ResourceModel
from .nodes import (
    LwM2MObject,
    MultipleResource,
    Node,
    ObjectInstance,
    Resource,
    ResourceInstance,
    SingleResource,
    TimestampedNodes,
)
from .path import ROOT, LwM2MPath
from .values import ObjectLink, ResourceType, Value, coerce_value, from_text, to_text

__all__ = [
    "ROOT",
    "SUPPORTED_FORMATS",
    "AttributeUpdate",
    "CodecError",
    "ContentFormat",
    "DdfError",
    "InvalidAttribute",
    "InvalidPath",
    "InvalidPayload",
    "InvalidValue",
    "LwM2MError",
    "LwM2MObject",
    "LwM2MPath",
    "ModelError",
    "ModelRegistry",
    "MultipleResource",
    "Node",
    "NotificationAttributes",
    "ObjectInstance",
    "ObjectLink",
    "ObjectModel",
    "Operations",
    "PathNotAllowed",
    "Resource",
    "ResourceInstance",
    "ResourceModel",
    "ResourceType",
    "SingleResource",
    "TimestampedNodes",
    "UnsupportedFormat",
    "Value",
    "coerce_value",
    "decode_composite",
    "decode_node",
    "decode_paths",
    "decode_timestamped",
    "encode_composite",
    "encode_node",
    "encode_paths",
    "encode_timestamped",
    "from_text",
    "merge_attributes",
    "parse_write_attributes",
    "to_text",
    "validate_attributes",
]
