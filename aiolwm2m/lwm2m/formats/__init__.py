"""Content formats: encode and decode LwM2M nodes in every format the TS defines."""

from .codec import (
    COMPOSITE_FORMATS,
    SUPPORTED_FORMATS,
    TIMESTAMPED_FORMATS,
    decode_composite,
    decode_create,
    decode_node,
    decode_paths,
    decode_timestamped,
    encode_composite,
    encode_create,
    encode_node,
    encode_paths,
    encode_timestamped,
)
from .content_format import ContentFormat, format_label
from .link_format import (
    DiscoveredLink,
    ObjectEntry,
    ObjectList,
    ObjectListTooLarge,
    decode_discover,
    decode_object_list,
    encode_discover,
    encode_object_list,
)

__all__ = [
    "COMPOSITE_FORMATS",
    "SUPPORTED_FORMATS",
    "TIMESTAMPED_FORMATS",
    "ContentFormat",
    "DiscoveredLink",
    "ObjectEntry",
    "ObjectList",
    "ObjectListTooLarge",
    "decode_composite",
    "decode_create",
    "decode_discover",
    "decode_node",
    "decode_object_list",
    "decode_paths",
    "decode_timestamped",
    "encode_composite",
    "encode_create",
    "encode_discover",
    "encode_node",
    "encode_object_list",
    "encode_paths",
    "encode_timestamped",
    "format_label",
]
