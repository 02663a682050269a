"""The product layer: REST API with OpenAPI, server-sent events, web UI, Prometheus metrics."""
