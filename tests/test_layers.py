"""The package's layering (shared/DESIGN.md): the lower layers never import the upper ones.

Read from the source with ``ast`` (nothing is imported), so a new upward import fails here
whichever test happens to exercise it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "aiolwm2m"

#: What each lower package may import (besides itself); the service packages (server, rd,
#: gateway, ...) compose one another and sit above all of these.
ALLOWED: dict[str, set[str]] = {
    "coap": set(),
    "lwm2m": {"coap"},
    "principals": set(),
    "log_throttle": set(),
    "security": {"principals", "log_throttle"},
    "store": {"principals", "log_throttle"},
    "transport": {"coap", "security", "log_throttle", "principals"},
}
#: Packages no other package below the command line may import.
TOP_ONLY = {"web": {"cli", "__main__"}, "cli": {"__main__"}}


def _top(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    rel = path.relative_to(PACKAGE).parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names
                         if a.name.startswith("aiolwm2m."))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("aiolwm2m."):
                    found.add(node.module.split(".")[1])
            elif node.level >= len(rel):  # relative import reaching the package root
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(a.name for a in node.names)
    found.discard(_top(path))
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "_compiled" not in p.parts)


def test_the_scan_sees_imports() -> None:
    # Guards the test itself: the server does import the CoAP layer and the stores.
    server = PACKAGE / "server" / "server.py"
    assert {"coap", "store", "lwm2m"} <= _imports(server)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_lower_layers_import_only_below(layer: str) -> None:
    wrong = {}
    for path in _modules():
        if _top(path) == layer:
            extra = _imports(path) - ALLOWED[layer]
            if extra:
                wrong[str(path.relative_to(PACKAGE))] = sorted(extra)
    assert wrong == {}


@pytest.mark.parametrize("upper", sorted(TOP_ONLY))
def test_web_and_cli_are_imported_only_from_above(upper: str) -> None:
    wrong = sorted(str(p.relative_to(PACKAGE)) for p in _modules()
                   if _top(p) not in TOP_ONLY[upper] | {upper} and upper in _imports(p))
    assert wrong == []
