"""Shared fixtures: the shared reference folder (DDF snapshot, client vectors) and the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aiolwm2m.lwm2m import ModelRegistry

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
DDF_DIR = SHARED / "ddf"
VECTORS_DIR = SHARED / "vectors"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared reference data not found at {path} (sibling of the repository)")
    return path


def load_manifests() -> list[tuple[str, dict[str, Any]]]:
    """(client folder, vector entry) for every manifest entry; empty when data is absent."""
    if not VECTORS_DIR.is_dir():
        return []
    out = []
    for manifest in sorted(VECTORS_DIR.glob("*/manifest.json")):
        data = json.loads(manifest.read_text())
        for entry in data["vectors"]:
            out.append((manifest.parent.name, entry))
    return out


@pytest.fixture(scope="session")
def model() -> ModelRegistry:
    return ModelRegistry.with_core_objects()
