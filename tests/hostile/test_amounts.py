"""Amounts under attack: every input is converted exactly or refused, never rounded, never a 500.

The oracle, ``meant``, reads what a person meant by a value independently of the code
under test, and leniently (it takes Unicode digits, exponents, fractions): whatever the
service accepts must equal it exactly; what it refuses, it may refuse.

A JSON number means the double it denotes: the API receives JSON already decoded, so
``1.0000000000000001`` (more digits than a double holds) arrives as 1.0. Every client that
writes numbers from doubles writes the shortest form, which is read back exactly; this is the
one place a written number can differ from the amount taken.
"""

import json
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.api.conftest import ApiOrg
from tests.api.support import balance
from tests.conftest import today
from tests.hostile.conftest import fuzz, refused
from timebank.ledger import hours_to_minutes, minutes_to_hours
from timebank.ledger.errors import InvalidEntry
from timebank.ledger.posting import MAX_LEG_MINUTES

# Twelve in Arabic-Indic and in full-width digits: digits to Python's int(), not to the API.
ARABIC_12 = "\u0661\u0662"
FULLWIDTH_12 = "\uff11\uff12"


def meant(value: object) -> Fraction | None:
    """The hours a person meant by ``value``, or None if it is no number at all."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return Fraction(value) if value.is_finite() else None
    if isinstance(value, str):
        try:
            return Fraction(value.strip())
        except (ValueError, ZeroDivisionError):
            return None
    return None


hours_like_text = st.from_regex(r"\A\s{0,2}[+-]?\d{0,11}(\.\d{0,4})?([eE][+-]?\d{1,3})?\s{0,2}\Z")
binary_sums = st.builds(lambda a, b: a + b, st.floats(-100, 100), st.floats(-100, 100))
anything = st.one_of(
    st.text(max_size=30),
    hours_like_text,
    st.floats(),
    binary_sums,
    st.integers(),
    st.decimals(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=1),
)

LISTED = [
    "-0", "-0.00", "1e2", "1E+2", ARABIC_12, FULLWIDTH_12, " 1.5 ", "\t2.25\n", "\u00a01.5", "NaN", "Infinity",
    "-Infinity",
    "nan", "inf", 0.1 + 0.2, 1e308, -1e308, 5e-324, float("nan"), float("inf"), -0.0, True, False, None, [1],
    {"hours": 1}, "", " ", "1,5", "1 5", "0x10", "1.", "1..5", "--1", "+-1", "1_000", "1/2", "⅕", "1.005",
    Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"), Decimal("1E+2"), Decimal("0.1234"), 10**20, 10**5000,
]  # fmt: skip


def label(value: object) -> str:
    if isinstance(value, int) and value.bit_length() > 1000:
        return f"a {value.bit_length()}-bit integer"
    return repr(value)[:40]


def assert_exact_or_refused(value: object) -> None:
    try:
        minutes = hours_to_minutes(value)
    except InvalidEntry:
        return
    hours = meant(value)
    assert hours is not None, f"{value!r} was taken as {minutes} minutes but is no number of hours"
    assert type(minutes) is int
    assert minutes == hours * 60, f"{value!r} is {hours * 60} minutes, not {minutes}"


class TestHoursToMinutes:
    @settings(max_examples=400, deadline=None)
    @given(anything)
    def test_converts_exactly_or_refuses(self, value: object) -> None:
        assert_exact_or_refused(value)

    @pytest.mark.parametrize("value", LISTED, ids=label)
    def test_each_listed_input_is_exact_or_refused(self, value: object) -> None:
        assert_exact_or_refused(value)

    @pytest.mark.parametrize(
        ("value", "minutes"),
        [
            ("-0", 0), ("-0.00", 0), (-0.0, 0), (" 1.5 ", 90), ("\t2.25\n", 135), (0.1, 6), (1.1, 66),
            ("+.5", 30), ("000000001.50", 90), (Decimal("1E+2"), 6000), (10**20, 6 * 10**21),
            (10**30 + 1, (10**30 + 1) * 60), (10**5000, 60 * 10**5000),
        ],
        ids=label,
    )  # fmt: skip
    def test_takes_these_exactly(self, value: object, minutes: int) -> None:
        assert hours_to_minutes(value) == minutes

    @pytest.mark.parametrize(
        "value",
        [
            "1e2", ARABIC_12, FULLWIDTH_12, "NaN", "Infinity", "-Infinity", 0.1 + 0.2, 1e308, 5e-324, float("nan"),
            float("-inf"), True, False, None, [1], {"hours": 1}, "", " ", "1,5", "0x10", "1.", "1/2", "1.005",
            Decimal("sNaN"), Decimal("0.1234"),
        ],
        ids=label,
    )  # fmt: skip
    def test_refuses_these(self, value: object) -> None:
        with pytest.raises(InvalidEntry):
            hours_to_minutes(value)

    @given(
        thirds=st.integers(-(10**9 - 1) * 20, (10**9 - 1) * 20),
        trim=st.booleans(),
        plus=st.booleans(),
        pad=st.sampled_from(["", " ", "\t", "\n "]),
    )
    @settings(max_examples=300, deadline=None)
    def test_takes_every_whole_number_of_minutes_written_with_two_decimals(
        self, thirds: int, trim: bool, plus: bool, pad: str
    ) -> None:
        minutes = thirds * 3  # exactly the amounts that have at most two decimals in hours
        text = format(Decimal(minutes) / 60, ".2f")
        if trim:
            text = text.rstrip("0").rstrip(".") if "." in text else text
        if plus and minutes > 0:
            text = "+" + text
        assert hours_to_minutes(pad + text + pad) == minutes
        assert hours_to_minutes(Decimal(text)) == minutes
        assert hours_to_minutes(float(text)) == minutes
        assert hours_to_minutes(minutes_to_hours(minutes)) == minutes


# --- Through the API -----------------------------------------------------------------------

json_fragments = st.one_of(
    st.text(max_size=20).map(json.dumps),
    hours_like_text.map(json.dumps),
    st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
    binary_sums.map(json.dumps),
    st.integers(-(10**30), 10**30).map(json.dumps),
    st.sampled_from(
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "-0",
            "-0.0",
            "0",
            "1e2",
            "1E+2",
            "0.30000000000000004",
            "1e308",
            "true",
            "false",
            "null",
            "[]",
            "[1.5]",
            "{}",
            '{"minutes": 60}',
            f'"{ARABIC_12}"',
            f'"{FULLWIDTH_12}"',
            '" 1.5 "',
            '"1.50"',
            "1.50",
            "0.1",
            "1.005",
            '"1.005"',
            '"-0"',
            '"-0.00"',
            '"1e2"',
            '"NaN"',
            '"Infinity"',
            "10000",
            "10000.01",
            '"10000.00"',
            "10001",
            str(10**20),
            '""',
            '"1,5"',
        ]
    ),
)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def meant_by_json(fragment: str) -> Fraction | None:
    """What a JSON value means in hours: a number is the double it denotes (see module doc)."""
    try:
        value = json.loads(fragment, parse_constant=_no_constants)
    except ValueError:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return Fraction(value)
    return meant(value)


async def post_hours(client: httpx.AsyncClient, api_org: ApiOrg, fragment: str, **fields: Any) -> httpx.Response:
    """A member gives the agency ``fragment`` (raw JSON) hours: the agency has no floor."""
    body = {
        "giver_account_id": api_org.member.account_id,
        "receiver_account_id": api_org.org.agency_account_id,
        "occurred_on": today().isoformat(),
        "description": "Fuzzed amount",
        **fields,
    }
    raw = json.dumps(body)[:-1] + f', "hours": {fragment}}}'
    headers = {**api_org.staff.posting(), "Content-Type": "application/json"}
    return await client.post(api_org.url("/exchanges"), content=raw.encode(), headers=headers)


async def check_exact_or_refused(client: httpx.AsyncClient, api_org: ApiOrg, fragment: str) -> None:
    before = await balance(client, api_org, api_org.member.account_id)
    response = await post_hours(client, api_org, fragment)
    after = await balance(client, api_org, api_org.member.account_id)
    if response.status_code != 201:
        refused(response, 400)
        assert after == before, f"{fragment} was refused but moved {after - before} minutes"
        return
    hours = meant_by_json(fragment)
    assert hours is not None, f"{fragment} was accepted but is no number of hours: {response.text}"
    minutes = hours * 60
    assert minutes.denominator == 1 and 0 < minutes <= MAX_LEG_MINUTES, f"{fragment} accepted: {response.text}"
    legs = {p["account_id"]: p for p in response.json()["postings"]}
    assert legs[api_org.member.account_id]["minutes"] == minutes
    assert legs[api_org.member.account_id]["hours"] == minutes_to_hours(int(minutes))
    assert legs[api_org.org.agency_account_id]["minutes"] == -minutes
    assert after - before == minutes


class TestHoursThroughTheApi:
    @fuzz
    @given(fragment=json_fragments)
    @example(fragment='"1.50"')
    @example(fragment="0.30000000000000004")
    async def test_every_body_is_posted_exactly_or_refused_with_400(
        self, client: httpx.AsyncClient, api_org: ApiOrg, fragment: str
    ) -> None:
        await check_exact_or_refused(client, api_org, fragment)

    async def test_takes_these_exactly(self, client, api_org) -> None:
        expected = {
            '"1.50"': 90, "1.5": 90, '" 2.25 "': 135, '"+.5"': 30, "0.1": 6, '"0.05"': 3, "1e2": 6000,
            "10000": MAX_LEG_MINUTES, '"10000.00"': MAX_LEG_MINUTES,
        }  # fmt: skip
        taken = {}
        for fragment in expected:
            response = await post_hours(client, api_org, fragment)
            ok = response.status_code == 201
            taken[fragment] = response.json()["postings"][0]["minutes"] if ok else response.text
        assert taken == expected

    async def test_refuses_these_with_400(self, client, api_org) -> None:
        fragments = [
            '"-0"', '"-0.00"', "-0", "-0.0", "0", '"1e2"', f'"{ARABIC_12}"', f'"{FULLWIDTH_12}"', "NaN", "Infinity",
            "-Infinity",
            "1e400", "1e308", "0.30000000000000004", "true", "false", "null", "[]", "[1.5]", "{}", '"NaN"',
            '"Infinity"', '"1.005"', "1.005", '"10000.05"', "10001", str(10**20), str(-(10**20)), '""', '" "',
            '"1,5"', '"0.01"',
        ]  # fmt: skip
        before = await balance(client, api_org, api_org.member.account_id)
        for fragment in fragments:
            refused(await post_hours(client, api_org, fragment), 400)
        assert await balance(client, api_org, api_org.member.account_id) == before

    async def test_minutes_must_be_a_positive_json_integer(self, client, api_org) -> None:
        body = json.dumps(
            {
                "giver_account_id": api_org.member.account_id,
                "receiver_account_id": api_org.org.agency_account_id,
                "occurred_on": today().isoformat(),
                "description": "Fuzzed minutes",
            }
        )[:-1]
        headers = {**api_org.staff.posting(), "Content-Type": "application/json"}
        for minutes in ["1.0", '"60"', "true", "60.5", "-0", "1e2", "[60]", "null", str(2**63), "-60", "0"]:
            raw = f'{body}, "minutes": {minutes}}}'.encode()
            refused(await client.post(api_org.url("/exchanges"), content=raw, headers=headers), 400)

    async def test_hours_and_minutes_together_are_refused(self, client, api_org) -> None:
        refused(await post_hours(client, api_org, '"1.00"', minutes=60), 400)


class TestMinimumBalanceHours:
    @fuzz
    @given(fragment=json_fragments)
    @example(fragment='"-20"')
    @example(fragment='"-0.5"')
    @example(fragment="null")
    async def test_is_set_exactly_or_refused_with_400(
        self, client: httpx.AsyncClient, api_org: ApiOrg, fragment: str
    ) -> None:
        before = (await client.get(api_org.url(), headers=api_org.coordinator.headers)).json()["min_balance"]
        raw = f'{{"min_balance_hours": {fragment}}}'.encode()
        headers = {**api_org.coordinator.headers, "Content-Type": "application/json"}
        response = await client.patch(api_org.url(), content=raw, headers=headers)
        if response.status_code != 200:
            refused(response, 400)
            return
        if fragment.strip() == "null":  # not given: nothing changes
            assert response.json()["min_balance"] == before
            return
        hours = meant_by_json(fragment)
        assert hours is not None, f"{fragment} was accepted: {response.text}"
        assert response.json()["min_balance"]["minutes"] == hours * 60
        assert hours <= 0
