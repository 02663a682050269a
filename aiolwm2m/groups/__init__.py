"""Device groups: named sets of LwM2M endpoints (a static list, and/or every registered
endpoint a Resource Directory lookup filter finds), and operations fanned out to every
member with a concurrency limit, queueing for sleeping members and a per-member result
stream. ``server.groups`` is the service (:class:`.service.GroupService`)."""
