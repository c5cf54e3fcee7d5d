"""The HTTP fixtures of tests/api (the app on the test's own event loop, a client)."""

from tests.api.conftest import app, client  # noqa: F401  (fixtures, used by name)
