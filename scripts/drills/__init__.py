"""Fault drills: load, faults and an audit against a real ``timebank serve`` process.

A maintainer runs them as ``scripts/drill-server-kill`` and
``scripts/drill-database-restart``; tests/reliability runs them at small sizes and
reuses the pieces. Nothing here is part of the product: the drills drive the
service only through its command line and its HTTP API, and read the database
only to audit it afterwards.

- ``live_server``: start, wait for, kill and restart ``timebank serve``; seed an organisation.
- ``load``: many HTTP clients posting writes, each retried with its own Idempotency-Key.
- ``audit``: what the service acknowledged against what the database holds.
- ``postgres``: scratch databases, and private PostgreSQL clusters to stop and start.
- ``server_kill``, ``database_restart``: the two drills.
"""
