"""The gateway as broker (CoP-002): nodes that publish to its pub/sub broker, fronted as
LwM2M end devices.

::

    broker = Broker(BrokerConfig(hosts=("127.0.0.1", "::1"), port=5690))
    await broker.start()
    nodes = BrokerNodes(gateway, broker)
    nodes.start()

A topic named ``{node}/{object}/{instance}/{resource}`` (``node-7/3303/0/5700``) carries that
resource of end device ``node-7`` (its prefix; the name must make a valid one). The gateway
keeps what the broker keeps, the last value of every topic, so the LwM2M server reads a
sleeping node's values from the gateway without waking it, and its observations follow the
node's publications. Object 32700 (:mod:`.node_model`) of each such end device tells what
the broker knows of the node: when it was first and last heard from, its last publication,
its subscriptions, and whether it is online (heard from within ``online_window``, or holding
a subscription, which the broker's observer-check keeps confirming).

A server's Write of a node's resource is published to its topic, as the broker itself:
a node subscribed to it gets the value (commands to a node go the way its data comes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiolwm2m.log_throttle import LogThrottle
from aiolwm2m.lwm2m.errors import LwM2MError
from aiolwm2m.lwm2m.formats import ContentFormat, decode_node, encode_node
from aiolwm2m.lwm2m.model import ModelRegistry
from aiolwm2m.lwm2m.nodes import ResourceInstance, SingleResource
from aiolwm2m.lwm2m.path import LwM2MPath
from aiolwm2m.lwm2m.prefixed_path import prefix_problem
from aiolwm2m.pubsub import Broker, Topic
from aiolwm2m.pubsub.events import (
    BrokerEvent,
    DataDeleted,
    Published,
    Subscribed,
    TopicCreated,
    TopicRemoved,
    Unsubscribed,
)

from .end_device import TreeEndDevice, end_device_model
from .gateway import LwM2MGateway
from .node_model import NODE_STATE_OBJECT
from .node_object import NodeStateInstance
from .proxied_objects import ForwardedInstance, proxied_class

log = logging.getLogger(__name__)
_ignored = LogThrottle(log, interval=60.0, burst=5)

__all__ = ["BrokerNodeDevice", "BrokerNodes", "topic_target"]

CF = ContentFormat
_VALUE_FORMATS: Final = (CF.TEXT, CF.CBOR, CF.OPAQUE)


def topic_target(name: str) -> tuple[str, LwM2MPath] | None:
    """``"node-7/3303/0/5700"`` -> ``("node-7", /3303/0/5700)``; None for a topic name that
    does not name a node's resource."""
    node, slash, rest = name.partition("/")
    if not slash or prefix_problem(node) is not None:
        return None
    try:
        path = LwM2MPath.parse("/" + rest)
    except LwM2MError:
        return None
    return (node, path) if len(path) == 3 else None


class BrokerNodeDevice(TreeEndDevice):
    """One node: its published resources and its Object 32700."""

    def __init__(self, nodes: BrokerNodes, node: str, model: ModelRegistry) -> None:
        self.state = NodeStateInstance(0)
        super().__init__(node, [self.state], device_id=f"urn:dev:ops:pubsub-{node}",
                         model=model)
        self.nodes = nodes
        self.topics: dict[LwM2MPath, Topic] = {}
        #: When the node was last heard from (epoch seconds; the resource keeps whole ones).
        self.last_seen: float | None = None

    def instance_for(self, path: LwM2MPath) -> ForwardedInstance | None:
        """The instance holding ``path``, created on first use (False: the model does not
        know the object)."""
        inst = self.tree.get(path[0], path[1])
        if isinstance(inst, ForwardedInstance):
            return inst
        if inst is not None or path[0] == NODE_STATE_OBJECT:
            return None
        try:
            cls = proxied_class(self.tree.model, path[0])
        except KeyError:
            return None
        created = cls(path[1])
        created.forward = self._forward
        self.tree.add(created)  # the server learns the new object through /25
        return created

    def take(self, path: LwM2MPath, topic: Topic) -> None:
        """The topic's last value into the resource it names."""
        inst = self.instance_for(path)
        if inst is None or topic.value is None:
            return
        fmt = topic.value_format if topic.value_format is not None else CF.TEXT
        if fmt not in _VALUE_FORMATS:
            return
        try:
            node = decode_node(fmt, topic.value, path, self.tree.model)
        except LwM2MError as e:
            _ignored.warning(self.prefix, "node %s: topic %s: %s", self.prefix,
                             topic.config.name, e)
            return
        if isinstance(node, SingleResource | ResourceInstance):
            inst.set(path[2], node.value)

    def _forward(self, inst: ForwardedInstance, rid: int, value: Any, arguments: str
                 ) -> Awaitable[None] | None:
        path = LwM2MPath(inst.object_id, inst.iid, rid)
        topic = self.topics.get(path)
        if topic is not None and value is not None:
            rm = inst.resource_model(rid)
            assert rm is not None
            payload = encode_node(CF.TEXT, path, SingleResource(rid, rm.type, value),
                                  self.tree.model)
            self.nodes.broker.publish(topic, payload, CF.TEXT)
        return None


class BrokerNodes:
    def __init__(self, gateway: LwM2MGateway, broker: Broker, *,
                 online_window: float = 600.0, model: ModelRegistry | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.gateway = gateway
        self.broker = broker
        self.online_window = online_window
        self.model = model if model is not None else end_device_model()
        self.clock = clock or broker.clock
        #: The nodes' end devices, by node name (their prefix).
        self.devices: dict[str, BrokerNodeDevice] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Front the nodes of the topics the broker holds (and loaded), then follow it."""
        for topic in self.broker.topics():
            self._topic(topic, publisher=None, published=topic.value is not None)
        self._unsubscribe = self.broker.on(self._on_event)
        self._task = asyncio.get_running_loop().create_task(self._watch_online())

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- the broker's events --------------------------------------------------------------

    def _on_event(self, event: BrokerEvent) -> None:
        if isinstance(event, Published):
            self._topic(event.topic, event.publisher, published=True)
        elif isinstance(event, TopicCreated):
            self._topic(event.topic, publisher=None, published=False)
        elif isinstance(event, TopicRemoved | DataDeleted):
            self._gone(event.topic, removed=isinstance(event, TopicRemoved))
        elif isinstance(event, Subscribed | Unsubscribed):
            self.refresh_online()

    def _topic(self, topic: Topic, publisher: str | None, *, published: bool) -> None:
        target = topic_target(topic.config.name)
        if target is None:
            return
        node, path = target
        device = self.devices.get(node)
        if device is None:
            if node in self.gateway.end_devices:
                _ignored.warning(node, "node %s: an end device of that prefix exists", node)
                return
            device = BrokerNodeDevice(self, node, self.model)
            self.devices[node] = device
            self.gateway.add_end_device(device)
        device.topics[path] = topic
        if not published:
            device.instance_for(path)
            return
        device.take(path, topic)
        state = device.state
        when = topic.published_at if topic.published_at is not None else self.clock()
        if state.get(1) is None:
            state.set(1, int(when))
        state.set(2, int(when))
        state.set(3, int(when))
        device.last_seen = when
        state.set(5, topic.config.name)
        if publisher is not None:  # a live publication (not one loaded from the store)
            state.set(4, int(state.get(4) or 0) + 1)
            state.set(7, publisher)
        self._set_online(device)

    def _gone(self, topic: Topic, *, removed: bool) -> None:
        target = topic_target(topic.config.name)
        device = self.devices.get(target[0]) if target is not None else None
        if device is None or target is None:
            return
        path = target[1]
        inst = device.tree.get(path[0], path[1])
        if inst is not None:
            inst.set(path[2], None)
        if removed:
            device.topics.pop(path, None)
            if not device.topics:  # the node's last topic: it is no longer fronted
                del self.devices[device.prefix]
                self.gateway.remove_end_device(device.prefix)

    # -- online / offline -----------------------------------------------------------------

    def refresh_online(self) -> None:
        for device in self.devices.values():
            self._set_online(device)

    def _set_online(self, device: BrokerNodeDevice) -> None:
        state = device.state
        address = state.get(7)
        seen = self.broker.nodes.get(address) if isinstance(address, str) else None
        subscriptions = seen.subscriptions if seen is not None else 0
        last = device.last_seen
        recent = last is not None and self.clock() - last <= self.online_window
        if state.get(6) != subscriptions:
            state.set(6, subscriptions)
        online = subscriptions > 0 or recent
        if state.get(0) != online:
            state.set(0, online)

    async def _watch_online(self) -> None:
        while True:
            await asyncio.sleep(min(30.0, max(1.0, self.online_window / 4)))
            self.refresh_online()
