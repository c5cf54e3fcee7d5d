"""Fixtures for the pages: the app through httpx on the test's loop (as tests/api does),
with a browser-like client that keeps cookies and fills in the CSRF token."""

from tests.api.conftest import api_org, app, client  # noqa: F401  (fixtures shared with the API tests)
