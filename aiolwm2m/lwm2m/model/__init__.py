"""Object model: definitions, the registry, the DDF loader and the shipped objects."""

from .ddf import DdfDocument, RegistryEntry, load_ddf_bytes, load_ddf_file
from .definitions import ObjectModel, Operations, ResourceModel
from .registry import ModelRegistry

__all__ = [
    "DdfDocument",
    "ModelRegistry",
    "ObjectModel",
    "Operations",
    "RegistryEntry",
    "ResourceModel",
    "load_ddf_bytes",
    "load_ddf_file",
]
