"""LwM2M over HTTP/2: the project's extension of the LwM2M 1.2 HTTP binding (HTT-001..004).

LwM2M 1.2 made the *device* an HTTP server for Read, Write and Execute, which fails behind
NAT and firewalls. Here the device only ever connects out, and one HTTP/2 connection carries
everything:

* Uplink (HTT-001): Register, Update, De-register and Send are ordinary HTTP requests on the
  CoAP paths and parameters (``POST /rd?ep=dev&lt=300&lwm2m=1.1&b=H``), content formats as
  media types, CoAP codes as HTTP statuses through one table (:mod:`.mapping`).
* Downlink (HTT-003): the device keeps ``GET /rd/{id}/requests`` open; the server writes
  requests on it in CBOR envelopes (:mod:`.envelope`); the device answers each with
  ``POST /rd/{id}/responses/{identity}``; notifications are such answers too, carrying
  ``lwm2m-observe``. No open downlink stream means the device sleeps: requests queue.
* Message identity (HTT-004): ``lwm2m-message-id`` on requests from the device, field 0 of
  an envelope towards it (:mod:`.identity`): duplicate detection both ways, and one retry
  after a broken connection, executed once.
* Several contents in one message (HTT-002): batches of requests in one envelope, bundles
  of answers in one ``application/multipart-core`` body (:mod:`.multipart`).
"""
