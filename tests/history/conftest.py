"""The real app on the test's loop, and an organisation with people who sign in (as tests/api)."""

from tests.api.conftest import api_org, app, client  # noqa: F401  (fixtures shared with the API tests)
