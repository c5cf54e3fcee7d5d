from tests.conftest import today


async def test_a_coordinator_logs_an_exchange_and_reads_balances(client, api_org):
    body = {
        "giver_account_id": api_org.member.account_id,
        "receiver_account_id": api_org.other_member.account_id,
        "hours": "1.50",
        "occurred_on": today().isoformat(),
        "description": "Gardening",
        "category": "Gardening",
    }
    r = await client.post(api_org.url("/exchanges"), json=body, headers=api_org.coordinator.posting())
    assert r.status_code == 201, r.text
    r = await client.get(api_org.url(f"/accounts/{api_org.member.account_id}"), headers=api_org.member.headers)
    assert r.json()["balance"] == {"minutes": 90, "hours": "1.50"}
