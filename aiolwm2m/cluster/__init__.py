"""Several server nodes as one, on Redis (``aiolwm2m server --store redis://... --node-id``).

Nodes that share a Redis (or a Redis Cluster) and a namespace share the stores
(:mod:`aiolwm2m.store.redis_stores`) and divide the devices between them:

- **Ownership** (:mod:`.ownership`): each device is owned by the node that holds its
  transport state (UDP address as that node sees it, DTLS session, TCP connection). The
  lease ``NS:{e:EP}:own`` names that node; a Register takes it, every Update renews it, and
  the scripts that write an endpoint refuse a node whose lease was taken (fencing). A lease
  counts while its node's heartbeat does (:mod:`.membership`), so a dead node's devices go
  to whichever node they next talk to, or that a REST request arrives at.
- **Routing** (:mod:`.bus`, :mod:`.routing`): any node answers the REST API for any device.
  A request for a device another node owns goes, as it came, to that node's inbox stream;
  the owner runs it and the answer comes back on the asker's inbox.
- **Events** (:mod:`.events`): while some node has server-sent-event subscribers, every node
  appends its events to a stream of its own, and the others pass them to their
  subscribers.
- **Expiry** (:mod:`.sweeper`): each node expires its own devices on time; registrations
  whose owner died are expired by the node whose share of the slot buckets they are in.
"""
