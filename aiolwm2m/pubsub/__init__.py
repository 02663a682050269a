"""A CoAP publish-subscribe broker (draft-ietf-core-coap-pubsub) on the project's CoAP
stack: topics, their last values kept across restarts, subscribers by Observe, and an
announcement to a Resource Directory."""

from .broker import Broker
from .config import BrokerConfig
from .errors import BrokerError
from .limits import BrokerLimits
from .topic_config import ConfigError, TopicConfig
from .topics import Topic

__all__ = ["Broker", "BrokerConfig", "BrokerError", "BrokerLimits", "ConfigError", "Topic",
           "TopicConfig"]
