"""The CoRE Resource Directory (RFC 9176) of the server: registration of any CoAP endpoint,
simple registration, lookup (with Observe), and a link-PATCH extension.

Layers: :mod:`.params`, :mod:`.links`, :mod:`.lookup`, :mod:`.patch` and :mod:`.directory`
are sans-IO (query items, payloads and ``now`` in; records, results or :class:`RdError`
out); :mod:`.service` ties them to a store and the server's refusals; :mod:`.resources`
serves them over CoAP. LwM2M registrations appear in lookups through :mod:`.lwm2m_view`.
"""
