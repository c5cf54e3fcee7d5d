"""Subject access requests and erasure through the API (coordinators only; the authorisation
matrix covers who may call them)."""

from tests.api.conftest import ApiOrg
from tests.api.support import error, posted
from timebank.privacy.service import ERASED_DESCRIPTION


class TestExport:
    async def test_a_coordinator_gets_everything_held_about_a_member(self, client, api_org: ApiOrg):
        member = api_org.member
        await posted(client, api_org, api_org.other_member.account_id, member.account_id, description="Lifts to town")
        r = await client.get(api_org.url(f"/members/{member.member_id}/export"), headers=api_org.coordinator.headers)
        assert r.status_code == 200, r.text
        document = r.json()
        assert document["member"]["display_name"] == "Member Self"
        assert document["login"]["username"] == member.username
        assert "password_hash" not in r.text and "argon2" not in r.text
        assert [t["description"] for t in document["transactions"]] == ["Lifts to town"]
        assert document["transactions"][0]["with"] == "another member"
        assert "Member Other" not in r.text  # the other side's name is their own personal data


class TestErasure:
    async def test_erases_with_the_name_confirmed_and_keeps_the_balance(self, client, api_org: ApiOrg):
        member = api_org.member
        await posted(client, api_org, member.account_id, api_org.other_member.account_id, minutes=45)
        url = api_org.url(f"/members/{member.member_id}/erasure")

        mismatch = await client.post(
            url, json={"confirm_display_name": "Someone Else"}, headers=api_org.coordinator.headers
        )
        error(mismatch, 400)
        r = await client.post(url, json={"confirm_display_name": "member self"}, headers=api_org.coordinator.headers)
        assert r.status_code == 200, r.text
        assert r.json()["display_name"] == f"Erased member {member.member_id}"
        assert r.json()["login"] == "anonymised" and r.json()["descriptions_removed"] == 1

        account = await client.get(api_org.url(f"/accounts/{member.account_id}"), headers=api_org.coordinator.headers)
        assert account.json()["balance"]["minutes"] == 45 and account.json()["display_name"].startswith("Erased")
        statement = await client.get(
            api_org.url(f"/accounts/{api_org.other_member.account_id}/statement"), headers=api_org.coordinator.headers
        )
        assert ERASED_DESCRIPTION in statement.text
        signed_out = await client.get("/api/v1/me", headers=member.headers)  # their tokens are gone
        assert signed_out.status_code == 401
        again = await client.post(url, json={"confirm_display_name": f"Erased member {member.member_id}"},
                                  headers=api_org.coordinator.headers)  # fmt: skip
        error(again, 409)

    async def test_a_coordinator_cannot_erase_themself(self, client, api_org: ApiOrg):
        me = api_org.coordinator
        r = await client.post(
            api_org.url(f"/members/{me.member_id}/erasure"),
            json={"confirm_display_name": me.display_name},
            headers=me.headers,
        )
        assert "yourself" in error(r, 409)["detail"]
