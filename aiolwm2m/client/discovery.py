"""Link-format answers: Discover (DM interface) and Bootstrap-Discover."""

from __future__ import annotations

from collections.abc import Callable

from aiolwm2m.coap.errors import BadRequest, NotFound
from aiolwm2m.lwm2m.attributes import NotificationAttributes
from aiolwm2m.lwm2m.formats import DiscoveredLink
from aiolwm2m.lwm2m.path import ROOT, LwM2MPath

from .instance import Instance
from .tree import SECURITY, SERVER, ObjectTree

AttributesAt = Callable[[LwM2MPath], NotificationAttributes]
_EMPTY = NotificationAttributes()


def _resource_links(inst: Instance, base: LwM2MPath, only: int | None,
                    attrs: AttributesAt) -> list[DiscoveredLink]:
    out: list[DiscoveredLink] = []
    for rid in inst.present():
        if only is not None and rid != only:
            continue
        path = base.child(rid)
        rm = inst.resource_model(rid)
        dim: int | None = None
        if rm is not None and rm.multiple:
            value = inst.get(rid)
            dim = len(value) if isinstance(value, dict) else 0
        out.append(DiscoveredLink(path, dim, None, attrs(path)))
    return out


def discover(tree: ObjectTree, path: LwM2MPath, attrs: AttributesAt) -> list[DiscoveredLink]:
    """The Discover answer for an object, instance or resource path."""
    if not path:
        raise BadRequest("Discover needs an object, instance or resource path")
    if len(path) > 3:
        raise BadRequest("Discover does not target resource instances")
    tree.locate(path)
    oid = path[0]
    out: list[DiscoveredLink] = []
    if len(path) == 1:
        version = tree.object_version(oid)
        out.append(DiscoveredLink(path, None, version if version != "1.0" else None,
                                  attrs(path)))
        for inst in tree.instances(oid):
            ipath = path.child(inst.iid)
            out.append(DiscoveredLink(ipath, None, None, attrs(ipath)))
            out.extend(_resource_links(inst, ipath, None, attrs))
        return out
    inst = tree.instance(path)
    ipath = LwM2MPath(oid, inst.iid)
    if len(path) == 2:
        out.append(DiscoveredLink(ipath, None, None, attrs(ipath)))
        out.extend(_resource_links(inst, ipath, None, attrs))
        return out
    links = _resource_links(inst, ipath, path[2], attrs)
    if not links:
        raise NotFound(f"{path} does not exist")
    return links


def bootstrap_discover(tree: ObjectTree, path: LwM2MPath) -> list[DiscoveredLink]:
    """``</>;lwm2m=1.1,</0/0>;uri="coap://..",</0/1>;ssid=1;uri="..",</1/0>;ssid=1,...``"""
    if len(path) > 1:
        raise BadRequest("Bootstrap-Discover targets the root or an object")
    oids = sorted(tree.objects) if not path else [path[0]]
    if path and path[0] not in tree.objects:
        raise NotFound(f"object {path[0]} is not implemented")
    out: list[DiscoveredLink] = []
    if not path:
        out.append(DiscoveredLink(ROOT, None, None, _EMPTY, (("lwm2m", "1.1"),)))
    for oid in oids:
        version = tree.object_version(oid)
        instances = tree.instances(oid)
        if not instances or version != "1.0":
            out.append(DiscoveredLink(LwM2MPath(oid), None,
                                      version if version != "1.0" else None))
        for inst in instances:
            other: list[tuple[str, str | None]] = []
            if oid == SECURITY:
                if not inst.get(1) and inst.get(10) is not None:
                    other.append(("ssid", str(inst.get(10))))
                if inst.get(0):
                    other.append(("uri", str(inst.get(0))))
            elif oid == SERVER and inst.get(0) is not None:
                other.append(("ssid", str(inst.get(0))))
            out.append(DiscoveredLink(LwM2MPath(oid, inst.iid), None, None, _EMPTY,
                                      tuple(other)))
    return out
