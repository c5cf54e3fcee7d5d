"""Prometheus metrics: what the service counts, and ``/metrics``, which reports it."""
