"""The OpenAPI document is valid and complete, and the API keeps to it under a fuzzer.

The fuzzer is schemathesis, run against a real ``timebank serve`` process (see
live_server.py) on a fresh database of each backend: once as the organisation's
coordinator, with the organisation's slug and ids that exist substituted into the
requests so they reach the real handlers, and once without credentials. It fails
on any 5xx and on any answer the document does not describe (status, content
type, headers, body schema).

TIMEBANK_FUZZ_EXAMPLES sets the examples per operation (default 25; try 500 for
a long run); a fixed seed (TIMEBANK_FUZZ_SEED to try another) makes every run fuzz the same cases.
"""

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from openapi_spec_validator import OpenAPIV31SpecValidator

from tests.api.conftest import test_settings as settings_for_tests
from tests.api.live_server import LiveServer, live_server
from tests.api.test_authorisation_matrix import MATRIX
from tests.conftest import EmptyDatabase
from timebank.app import create_app

FUZZ_EXAMPLES = int(os.environ.get("TIMEBANK_FUZZ_EXAMPLES", "25"))
# A fixed seed unless one is given, so every run fuzzes with the same cases (TIMEBANK_FUZZ_SEED=
# another number explores others); a failure's message names the seed it ran with.
FUZZ_SEED = os.environ.get("TIMEBANK_FUZZ_SEED", "20261201")
# What every answer must keep to. (Not positive_data_acceptance: the document cannot say
# everything the validators refuse, such as "exactly one of minutes or hours".)
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "missing_required_header",
)
METHODS = {"get", "put", "post", "patch", "delete"}
HOOKS = Path(__file__).with_name("fuzz_hooks.py")


@pytest.fixture(scope="module")
async def document() -> AsyncIterator[dict[str, Any]]:
    """The document as served (no database is needed to serve it)."""
    transport = httpx.ASGITransport(app=create_app(settings_for_tests()))
    async with httpx.AsyncClient(transport=transport, base_url="http://timebank.test") as client:
        r = await client.get("/schema/openapi.json")
    assert r.status_code == 200, r.text
    yield r.json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


class TestTheDocument:
    def test_is_valid_openapi_3_1(self, document: dict[str, Any]) -> None:
        assert document["openapi"].startswith("3.1.")
        OpenAPIV31SpecValidator(document).validate()

    def test_schemathesis_can_build_every_operation(self, document: dict[str, Any]) -> None:
        loaded = [result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()]
        assert {(op.method.upper(), op.path) for op in loaded} == {(m, p) for m, p, _ in operations(document)}

    def test_every_status_in_the_authorisation_matrix_is_documented(self, document: dict[str, Any]) -> None:
        undocumented = {
            (method, path): sorted(set(map(str, MATRIX[method, path].statuses)) - set(operation["responses"]))
            for method, path, operation in operations(document)
            if (method, path) in MATRIX
        }
        assert {op: codes for op, codes in undocumented.items() if codes} == {}

    def test_every_api_operation_documents_its_errors(self, document: dict[str, Any]) -> None:
        missing = {}
        for method, path, operation in operations(document):
            if not path.startswith("/api/"):
                continue
            expected = {"503"}  # any request may find the database away
            if (method, path) != ("POST", "/api/v1/auth/token"):
                expected.add("401")
            if path.startswith("/api/v1/orgs/{org}"):
                expected.add("404")
            if operation.get("parameters") or "requestBody" in operation:
                expected.add("400")
            if any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])):
                expected.add("409")  # the same key with another body
            if absent := expected - set(operation["responses"]):
                missing[method, path] = sorted(absent)
        assert missing == {}

    def test_every_error_answer_is_described_with_the_error_shape(self, document: dict[str, Any]) -> None:
        schemas = document["components"]["schemas"]
        wrong = []
        for method, path, operation in operations(document):
            if not path.startswith("/api/"):
                continue
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                # Litestar describes its own validation errors (400) inline, in the same shape.
                schema = schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
                if not {"status_code", "detail"} <= set(schema.get("required", ())) or not response.get("description"):
                    wrong.append((method, path, status))
        assert wrong == []


@pytest.fixture(scope="module")
def served(empty_databases: EmptyDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``timebank serve`` on a fresh migrated database of the backend under test."""
    with live_server(empty_databases.create(), tmp_path_factory.mktemp("live")) as server:
        yield server


def _toml(value: object) -> str:
    """TOML for the strings, integers and lists below (a JSON string is a TOML basic string)."""
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def fuzz_config(server: LiveServer, *, signed_in: bool) -> str:
    """schemathesis.toml: the organisation in the path, and values that exist, most of the time."""
    seeded = server.seeded
    # Not the caller's own record: the fuzzer would soon demote or deactivate itself.
    member_ids = [m for m in seeded.member_ids if m != seeded.coordinator_member_id]
    recent_days = [(dt.date.today() - dt.timedelta(days=n)).isoformat() for n in (1, 2, 7, 30)]
    bindings = {
        "path.member_id": "member_ids",
        "path.account_id": "account_ids",
        "path.transaction_id": "transaction_ids",
        "query.account_id": "account_ids",
        "body.giver_account_id": "account_ids",
        "body.receiver_account_id": "account_ids",
        "body.givers[*].account_id": "account_ids",
        "body.receivers[*].account_id": "account_ids",
        "body.occurred_on": "recent_days",
        "body.category": "categories",
    }
    lines = [
        f"hooks = {_toml(str(HOOKS))}",
        # Methods an operation does not have are the business of the unsupported_method check, not run here.
        "[phases.coverage]",
        "unexpected-methods = []",
        "[parameters]",
        f'"path.org" = {_toml(seeded.slug)}',
        *(f'"{key}" = {{ dictionary = "{name}", probability = 0.8 }}' for key, name in bindings.items()),
    ]
    for name, values in [
        ("member_ids", member_ids),
        ("account_ids", seeded.account_ids),
        ("transaction_ids", seeded.transaction_ids),
        ("recent_days", recent_days),
        ("categories", seeded.categories),
    ]:
        lines += [f"[dictionaries.{name}]", f"values = {_toml(values)}"]
    if signed_in:
        lines += [
            "[headers]",
            f"Authorization = {_toml('Bearer ' + server.sign_in())}",
            # Signing out revokes the token it is sent with: give it one of its own.
            "[[operations]]",
            'include-name = "DELETE /api/v1/auth/token"',
            f"headers = {{ Authorization = {_toml('Bearer ' + server.sign_in())} }}",
            # Only a site administrator creates organisations.
            "[[operations]]",
            'include-name = "POST /api/v1/orgs"',
            f"headers = {{ Authorization = {_toml('Bearer ' + server.sign_in(seeded.site_admin_username))} }}",
        ]
    return "\n".join(lines) + "\n"


def run_schemathesis(server: LiveServer, workdir: Path, *, signed_in: bool) -> subprocess.CompletedProcess[str]:
    config = workdir / f"schemathesis-{'signed-in' if signed_in else 'anonymous'}.toml"
    config.write_text(fuzz_config(server, signed_in=signed_in))
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run"),
        f"{server.base_url}/schema/openapi.json",
        *("--checks", ",".join(CHECKS)),
        # Without credentials every answer but sign-in is a 401: fewer, random, examples suffice.
        *("--max-examples", str(FUZZ_EXAMPLES if signed_in else max(5, FUZZ_EXAMPLES // 3))),
        *(() if signed_in else ("--phases", "examples,fuzzing")),
        # One worker: with two, schemathesis's threads call ast.parse at once (through Hypothesis's
        # lambda descriptions), which CPython 3.11.7 answers with "SystemError: AST constructor
        # recursion depth mismatch" now and then (a CPython bug, fixed in later 3.11 releases).
        *("--workers", "1"),
        *("--generation-database", "none"),
        *("--seed", FUZZ_SEED),
    ]
    # Run in a scratch directory: schemathesis writes its own files where it runs.
    env = {**os.environ, "TIMEBANK_FUZZ_PROTECTED_MEMBER_ID": str(server.seeded.coordinator_member_id)}
    return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.live_server
@pytest.mark.parametrize("signed_in", [True, False], ids=["as-coordinator", "anonymous"])
def test_the_fuzzer_finds_no_server_error_and_no_answer_outside_the_document(
    served: LiveServer, tmp_path: Path, signed_in: bool
) -> None:
    result = run_schemathesis(served, tmp_path, signed_in=signed_in)
    print(result.stdout[-3000:])  # the seed and the summary, shown with -s or on failure
    assert result.returncode == 0, (
        f"{result.stdout[-12000:]}\n{result.stderr[-3000:]}\n--- server log ---\n{served.log()[-6000:]}"
    )
