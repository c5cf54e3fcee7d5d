from tests.api.conftest import app, client  # noqa: F401  (the real app, on the test's loop)
