"""Schemathesis hooks for test_openapi.py's fuzzing run (loaded by schemathesis from this file).

The fuzzer signs in as the organisation's coordinator. Left alone, it soon registers
a second coordinator and then deactivates or demotes itself, after which every
request is a 404 or 403 and the rest of the run tests nothing. So it may edit any
member but itself in those two ways. Everything else it may do, including
closing the books or reversing every exchange.
"""

import os

import schemathesis

PROTECTED_MEMBER_ID = os.environ.get("TIMEBANK_FUZZ_PROTECTED_MEMBER_ID", "")


@schemathesis.hook("filter_case").apply_to(method="PATCH", path="/api/v1/orgs/{org}/members/{member_id}")
def not_demoting_or_deactivating_the_caller(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    if str((case.path_parameters or {}).get("member_id")) != PROTECTED_MEMBER_ID:
        return True
    body = case.body if isinstance(case.body, dict) else {}
    return body.get("role") in (None, "coordinator") and body.get("is_active") in (None, True)
