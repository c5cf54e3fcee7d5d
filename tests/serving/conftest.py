"""Fixtures for serving tests: the HTTP fixtures of tests/api (the app on the test's own loop)."""

from tests.api.conftest import api_org, app, client  # noqa: F401  (fixtures)
