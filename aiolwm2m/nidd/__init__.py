"""LwM2M over NIDD: non-IP devices reached through a 3GPP SCEF's T8 API (TS 29.122).

* the T8 data model: ``t8_fields``, ``t8_model``, ``quota_extension`` (our byte quotas);
* the server side: ``service`` (wiring, ``server.nidd``), ``scef_client`` (httpx),
  ``configurations``, ``downlink``, ``transport`` (the ``Endpoint``), ``callbacks`` (served by
  ``aiolwm2m.web.routes_nidd`` with ``/api/nidd``), ``authorizer``, ``quotas``,
  ``quota_report``, ``groups``, ``devices``, ``settings``, ``metrics``;
* the device side: ``attachment``, ``client_link``, ``apn_profile`` (Object 11)
  (the simulator's side is ``aiolwm2m.simulator.nidd_fleet_link``);
* ``ue_link``: the UE <-> SCEF datagrams, and ``emulator``: the SCEF emulator.
"""
