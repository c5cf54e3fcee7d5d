"""Reports, closes, rates, statements and exports through HTTP; every CSV neutralised; totals agree."""

import csv
import datetime as dt
import io
import json
from collections import Counter

import httpx
import pytest

from tests.api.conftest import Person, add_person, make_api_org
from tests.api.support import error, invalid, posted
from tests.conftest import Org, new_key, today
from tests.reports.support import KnownOrg, build_known_org
from timebank.db import Database
from timebank.members.service import create_member
from timebank.models import Role
from timebank.reports.service import (
    BY_KIND_KEYS,
    EXCHANGE_KINDS,
    Period,
    add_months,
    kind_key,
    month_label,
    monthly_report,
)

HOSTILE_NAMES = ['=HYPERLINK("http://evil.example","Click")', "+1", "@SUM(A1)", "-2 Minus"]


@pytest.fixture(scope="module")
async def known(db: Database) -> KnownOrg:
    return await build_known_org(db)


@pytest.fixture(scope="module")
async def known_staff(db: Database, known: KnownOrg) -> dict[str, Person]:
    return {
        "staff": await add_person(db, known.org, Role.STAFF),
        "coordinator": await add_person(db, known.org, Role.COORDINATOR),
        "member": await add_person(db, known.org, Role.MEMBER),
    }


def url(org: Org, path: str) -> str:
    return f"/api/v1/orgs/{org.slug}{path}"


def read_csv(response: httpx.Response) -> list[list[str]]:
    assert response.headers["content-type"].startswith("text/csv"), response.headers
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


def summary_and_members(rows: list[list[str]]) -> tuple[dict[str, str], list[dict[str, str]]]:
    blank = rows.index([])
    summary = dict(rows[1:blank])
    header = rows[blank + 1]
    return summary, [dict(zip(header, row, strict=True)) for row in rows[blank + 2 :]]


class TestReadingTheReport:
    async def test_staff_read_the_same_report_the_service_computes(self, client, db, known, known_staff) -> None:
        month = month_label(known.m)
        r = await client.get(
            url(known.org, "/reports/monthly"), params={"month": month}, headers=known_staff["staff"].headers
        )
        assert r.status_code == 200, r.text
        expected = await monthly_report(db, known.org.id, Period(known.m, known.m))
        assert r.json() == expected.model_dump(mode="json", by_alias=True)
        assert r.headers["cache-control"] == "no-store"
        assert error(
            await client.get(
                url(known.org, "/reports/monthly"), params={"month": month}, headers=known_staff["member"].headers
            ),
            403,
        )

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"month": "2026-13"},
            {"month": "0000-01"},
            {"month": "9999-12"},
            {"month": "26-01"},
            {"from": "2026-01"},
            {"month": "2026-01", "from": "2026-01", "to": "2026-02"},
            {"from": "2026-03", "to": "2026-01"},
            {"from": "2000-01", "to": "2026-01"},
        ],
    )
    async def test_a_period_must_be_whole_months_given_once(self, client, known, known_staff, params) -> None:
        invalid(
            await client.get(url(known.org, "/reports/monthly"), params=params, headers=known_staff["staff"].headers)
        )

    async def test_csv_by_format_or_accept_header_with_the_summary_and_member_table(
        self, client, known, known_staff
    ) -> None:
        headers = known_staff["staff"].headers
        month = month_label(known.m)
        by_format = await client.get(
            url(known.org, "/reports/monthly"), params={"month": month, "format": "csv"}, headers=headers
        )
        by_accept = await client.get(
            url(known.org, "/reports/monthly"), params={"month": month}, headers={**headers, "Accept": "text/csv"}
        )
        assert by_format.content == by_accept.content
        assert f"report-{known.org.slug}-{month}.csv" in by_format.headers["content-disposition"]
        summary, members = summary_and_members(read_csv(by_format))
        assert summary["month"] == month
        assert (summary["exchanges"], summary["reversals"]) == ("5", "1")
        assert (summary["hours_exchanged"], summary["hours_exchanged_gross"]) == ("5.00", "6.50")
        assert summary["by_kind.group.hours"] == "3.00"
        assert summary["trial_balance.held"] == "true"
        alice = next(m for m in members if m["name"] == "Alice Archer")
        assert alice == {
            "member_number": str(known.members["alice"]),
            "name": "Alice Archer",
            "opening_balance_hours": "10.50",
            "given_hours": "2.00",
            "received_hours": "1.25",
            "other_hours": "-2.00",
            "closing_balance_hours": "9.25",
        }

    async def test_the_range_csv_is_anonymised_by_default_for_funders(self, client, known, known_staff) -> None:
        headers = known_staff["staff"].headers
        period = {"from": month_label(add_months(known.m, -1)), "to": month_label(add_months(known.m, 1))}
        _, members = summary_and_members(
            read_csv(
                await client.get(
                    url(known.org, "/reports/monthly"), params={**period, "format": "csv"}, headers=headers
                )
            )
        )
        assert {m["name"] for m in members} == {f"Member {m['member_number']}" for m in members}
        assert str(known.members["alice"]) in {m["member_number"] for m in members}
        _, named = summary_and_members(
            read_csv(
                await client.get(
                    url(known.org, "/reports/monthly"),
                    params={**period, "format": "csv", "anonymised": "false"},
                    headers=headers,
                )
            )
        )
        assert "Alice Archer" in {m["name"] for m in named}
        month_csv = await client.get(
            url(known.org, "/reports/monthly"), params={"month": month_label(known.m), "format": "csv"}, headers=headers
        )
        assert "Alice Archer" in month_csv.content.decode()
        anonymous_json = (
            await client.get(
                url(known.org, "/reports/monthly"),
                params={"month": month_label(known.m), "anonymised": "true"},
                headers=headers,
            )
        ).json()
        names = [
            row["name"]
            for section in ("members", "top_givers", "dormant_members", "never_active", "new_members")
            for row in anonymous_json[section]
        ]
        assert names and all(name.startswith("Member ") for name in names)
        assert "Alice" not in json.dumps(anonymous_json["members"])


class TestEveryCsvNeutralisesFormulas:
    async def test_names_that_would_run_come_out_as_text_and_negative_numbers_stay_numbers(self, client, db) -> None:
        api_org = await make_api_org(db)
        accounts = []
        for name in HOSTILE_NAMES:
            new = await create_member(db, api_org.id, display_name=name, changed_by=None)
            accounts.append(new.account.id)
        await posted(client, api_org, accounts[0], accounts[1], minutes=90, description="=1+1 in a description")
        headers = api_org.coordinator.headers
        month = month_label(today().replace(day=1))
        report_csv = (
            await client.get(api_org.url("/reports/monthly"), params={"month": month, "format": "csv"}, headers=headers)
        ).content.decode("utf-8-sig")
        statement_csv = (
            await client.get(
                api_org.url(f"/accounts/{accounts[1]}/statement"), params={"format": "csv"}, headers=headers
            )
        ).content.decode("utf-8-sig")
        export_csv = (
            await client.get(
                api_org.url("/exports/ledger"),
                params={"from": today().isoformat(), "to": today().isoformat(), "format": "csv"},
                headers=headers,
            )
        ).content.decode("utf-8-sig")
        for text in (report_csv, statement_csv, export_csv):
            cells = [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]
            dangerous = [
                cell
                for cell in cells
                if cell[:1] in ("=", "+", "@", "\t", "\r") or (cell.startswith("-") and not _is_number(cell))
            ]
            assert dangerous == [], dangerous
        _, members = summary_and_members(list(csv.reader(io.StringIO(report_csv, newline=""))))
        by_name = {m["name"]: m for m in members}
        assert set(by_name) >= {"'" + name for name in HOSTILE_NAMES}
        assert by_name["'+1"]["closing_balance_hours"] == "-1.50"  # a number, as a number
        assert "'=1+1 in a description" in statement_csv and "'=1+1 in a description" in export_csv
        assert ",-1.50," in statement_csv


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


class TestClosingThroughTheApi:
    async def test_closes_once_replays_with_the_same_key_and_refuses_again(self, client, db) -> None:
        api_org = await make_api_org(db)
        last_month = month_label(add_months(today().replace(day=1), -1))
        key = new_key()
        path = api_org.url(f"/periods/{last_month}/close")
        first = await client.post(path, headers=api_org.coordinator.posting(key))
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["month"] == last_month
        assert body["closed_by_user_id"] == api_org.coordinator.user_id
        assert body["books_closed_through"] == (today().replace(day=1) - dt.timedelta(days=1)).isoformat()
        replay = await client.post(path, headers=api_org.coordinator.posting(key))
        assert (replay.status_code, replay.headers["idempotent-replayed"], replay.json()) == (200, "true", body)
        assert "already closed" in error(await client.post(path, headers=api_org.coordinator.posting()), 409)["detail"]
        invalid(await client.post(api_org.url("/periods/2026-1/close"), headers=api_org.coordinator.posting()))
        invalid(await client.post(path, headers=api_org.coordinator.headers))  # no Idempotency-Key
        report = await client.get(
            api_org.url("/reports/monthly"), params={"month": last_month}, headers=api_org.staff.headers
        )
        assert report.json()["closed"] is True


class TestHourlyRates:
    async def test_every_change_is_kept_with_who_and_when(self, client, db) -> None:
        api_org = await make_api_org(db)
        headers = api_org.coordinator.headers
        assert (await client.get(api_org.url("/hourly-rates"), headers=headers)).json() == {
            "current": None,
            "history": [],
        }
        for amount in ("12.60", "13"):
            r = await client.post(
                api_org.url("/hourly-rates"), json={"amount": amount, "basis": f"Living wage {amount}"}, headers=headers
            )
            assert r.status_code == 201, r.text
        listed = (await client.get(api_org.url("/hourly-rates"), headers=api_org.staff.headers)).json()
        assert [(h["rate"], h["basis"]) for h in listed["history"]] == [
            ({"amount": "13.00", "currency": "GBP"}, "Living wage 13"),
            ({"amount": "12.60", "currency": "GBP"}, "Living wage 12.60"),
        ]
        assert listed["current"] == listed["history"][0]
        assert {h["set_by_user_id"] for h in listed["history"]} == {api_org.coordinator.user_id}
        assert all(h["set_on"] == today().isoformat() for h in listed["history"])
        for body in (
            {"amount": "-1", "basis": "x"},
            {"amount": "1.234", "basis": "x"},
            {"amount": "12"},
            {"amount": "12", "basis": " "},
        ):
            invalid(await client.post(api_org.url("/hourly-rates"), json=body, headers=headers))


class TestStatementCsv:
    async def test_every_entry_of_the_period_with_its_running_balance(self, client, db) -> None:
        api_org = await make_api_org(db)
        me, other = api_org.member.account_id, api_org.other_member.account_id
        start = today().replace(day=1)
        for minutes in (30, 45):
            await posted(client, api_org, other, me, minutes=minutes, occurred_on=start.isoformat())
        await posted(client, api_org, me, other, minutes=15, occurred_on=start.isoformat())
        r = await client.get(
            api_org.url(f"/accounts/{me}/statement"), params={"format": "csv"}, headers=api_org.member.headers
        )
        rows = read_csv(r)
        assert rows[0][:3] == ["transaction_id", "occurred_on", "recorded_at"]
        assert [row[3] for row in rows[1:]] == [
            "opening_balance",
            "exchange",
            "exchange",
            "exchange",
            "closing_balance",
        ]
        assert [row[-1] for row in rows[1:]] == ["0.00", "-0.50", "-1.25", "-1.00", "-1.00"]
        assert rows[2][6] == "Member Other"
        ten_years = {"from": "2016-01-01", "to": today().isoformat(), "format": "csv"}
        assert (
            read_csv(
                await client.get(
                    api_org.url(f"/accounts/{me}/statement"), params=ten_years, headers=api_org.member.headers
                )
            )[-1][-1]
            == "-1.00"
        )
        error(
            await client.get(
                api_org.url("/accounts/999999999/statement"), params={"format": "csv"}, headers=api_org.staff.headers
            ),
            404,
        )
        error(
            await client.get(
                api_org.url(f"/accounts/{other}/statement"), params={"format": "csv"}, headers=api_org.member.headers
            ),
            403,
        )


class TestTheReportAgreesWithTheExport:
    @pytest.mark.parametrize("months", [(0, 0), (-1, 1), (-6, 1)])
    async def test_the_same_totals_for_the_same_period(self, client, known, known_staff, months) -> None:
        first, last = add_months(known.m, months[0]), add_months(known.m, months[1])
        headers = known_staff["staff"].headers
        report = (
            await client.get(
                url(known.org, "/reports/monthly"),
                params={"from": month_label(first), "to": month_label(last)},
                headers=headers,
            )
        ).json()
        end = add_months(last, 1) - dt.timedelta(days=1)
        lines = (
            await client.get(
                url(known.org, "/exports/ledger"),
                params={"from": "2000-01-01", "to": end.isoformat(), "format": "jsonl"},
                headers=headers,
            )
        ).text.splitlines()
        everything = [json.loads(line) for line in lines]
        kinds = {t["id"]: t["kind"] for t in everything}
        in_period = [t for t in everything if first.isoformat() <= t["occurred_on"] <= end.isoformat()]

        def credit(t: dict) -> int:
            return sum(p["minutes"] for p in t["postings"] if p["minutes"] > 0)

        by_kind: dict[str, list[int]] = {key: [0, 0] for key in BY_KIND_KEYS}
        for t in in_period:
            agency = [p for p in t["postings"] if p["account_kind"] == "agency"]
            key = kind_key(t["kind"], any(p["minutes"] > 0 for p in agency), any(p["minutes"] < 0 for p in agency))
            by_kind[key][0] += 1
            by_kind[key][1] += credit(t)
        gross = sum(credit(t) for t in in_period if t["kind"] in EXCHANGE_KINDS)
        reversed_ = sum(
            credit(t) for t in in_period if t["kind"] == "reversal" and kinds[t["reverses_id"]] in EXCHANGE_KINDS
        )
        closing: Counter[int] = Counter()
        for t in everything:
            for p in t["postings"]:
                closing[p["account_id"]] += p["minutes"]

        assert report["exchanges"] == sum(1 for t in in_period if t["kind"] in EXCHANGE_KINDS)
        assert report["reversals"] == sum(1 for t in in_period if t["kind"] == "reversal")
        assert report["hours_exchanged_gross"]["minutes"] == gross
        assert report["hours_exchanged"]["minutes"] == gross - reversed_
        assert {k: [v["count"], v["minutes"]] for k, v in report["by_kind"].items()} == by_kind
        assert {m["account_id"]: m["closing_balance"]["minutes"] for m in report["members"]} == {
            m["account_id"]: closing[m["account_id"]] for m in report["members"]
        }
        assert report["trial_balance"]["total"]["minutes"] == sum(closing.values()) == 0

        csv_rows = read_csv(
            await client.get(
                url(known.org, "/exports/ledger"),
                params={"from": first.isoformat(), "to": end.isoformat(), "format": "csv"},
                headers=headers,
            )
        )
        header, body = csv_rows[0], [dict(zip(csv_rows[0], row, strict=True)) for row in csv_rows[1:]]
        assert header[0] == "transaction_id"
        assert len({row["transaction_id"] for row in body}) == len(in_period)
        assert (
            sum(int(row["minutes"]) for row in body if row["kind"] in EXCHANGE_KINDS and int(row["minutes"]) > 0)
            == gross
        )
