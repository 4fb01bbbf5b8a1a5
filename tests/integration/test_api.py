"""The REST API of a real `ringfence serve` process, over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def problem(response: httpx.Response, status: int) -> dict:  # type: ignore[type-arg]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    return body  # type: ignore[no-any-return]


def revisions(client: httpx.Client, name: str) -> int:
    response = client.get(f"/v1/configs/{name}/-/revisions")
    return 0 if response.status_code == 404 else len(response.json()["items"])


def test_push_read_history_diff_revert_over_http(server) -> None:
    with server.client() as api:
        created = api.put("/v1/configs/payments/limits", json={"value": {"card": 100}, "message": "first"})
        assert created.status_code == 201
        assert created.headers["etag"] == '"1"'
        second = api.put("/v1/configs/payments/limits", headers={"If-Match": '"1"'},
                         json={"value": {"card": 250, "currency": "EUR"}, "message": "raise card limit"})
        assert second.status_code == 201
        assert second.json()["changes"] == [
            {"op": "replace", "path": "/card", "value": 250, "old": 100},
            {"op": "add", "path": "/currency", "value": "EUR"},
        ]
        current = api.get("/v1/configs/payments/limits").json()
        assert (current["version"], current["value"], current["author"]) == (2, {"card": 250, "currency": "EUR"},
                                                                            "bootstrap-admin")
        assert api.get("/v1/configs/payments/limits/-/revisions/1").json()["value"] == {"card": 100}
        history = api.get("/v1/configs/payments/limits/-/revisions").json()["items"]
        assert [(r["version"], r["message"]) for r in history] == [(2, "raise card limit"), (1, "first")]
        diff = api.get("/v1/configs/payments/limits/-/diff", params={"from": 1, "to": 2}).json()
        assert diff["summary"] == {"added": 1, "removed": 0, "changed": 1}
        reverted = api.post("/v1/configs/payments/limits/-/revert", headers={"If-Match": "2"},
                            json={"to": 1, "message": "back to known good"})
        assert reverted.status_code == 201
        assert reverted.json()["revision"]["version"] == 3
        assert api.get("/v1/configs/payments/limits").json()["value"] == {"card": 100}
        listing = api.get("/v1/configs", params={"prefix": "payments/"}).json()
        assert [c["name"] for c in listing["items"]] == ["payments/limits"]
        audit = api.get("/v1/audit", params={"subject": "payments/limits"}).json()["items"]
        assert [e["action"] for e in audit if e["action"].startswith("config.")] == [
            "config.revert", "config.push", "config.push"]
        assert sum(e["action"] == "rollout.start" for e in audit) == 3, "every revision starts a rollout"


def test_list_paginates_with_a_cursor(server) -> None:
    with server.client() as api:
        for i in range(5):
            api.put(f"/v1/configs/team/c{i}", json={"value": i, "message": "m"}).raise_for_status()
        first = api.get("/v1/configs", params={"limit": 2}).json()
        second = api.get("/v1/configs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
        third = api.get("/v1/configs", params={"limit": 2, "cursor": second["next_cursor"]}).json()
        names = [c["name"] for page in (first, second, third) for c in page["items"]]
        assert names == [f"team/c{i}" for i in range(5)]
        assert third["next_cursor"] is None


def test_bad_input_gets_a_clear_problem_and_stores_nothing(server) -> None:
    with server.client() as api:
        api.put("/v1/schemas/payments/*", json={"message": "m", "schema": {
            "type": "object", "properties": {"card": {"type": "integer", "maximum": 1000}}}}).raise_for_status()
        api.put("/v1/configs/payments/limits", json={"value": {"card": 10}, "message": "m"}).raise_for_status()

        body = problem(api.put("/v1/configs/payments/limits", headers={"If-Match": "1"},
                               json={"value": {"card": 5000, "extra": []}, "message": "too much"}), 422)
        assert body["errors"] == [{"pointer": "/card", "message": "5000 is greater than the maximum of 1000",
                                   "validator": "schema"}]

        malformed = problem(api.put("/v1/configs/payments/limits", headers={"If-Match": "1",
                                    "Content-Type": "application/json"},
                                    content=b'{"value": {"card": 1,\n  "x": }, "message": "m"}'), 422)
        assert malformed["errors"][0]["line"] == 2
        assert malformed["errors"][0]["column"] == 8  # the "}" where a value should be

        duplicate = problem(api.put("/v1/configs/payments/limits", headers={"If-Match": "1"},
                                    content=b'{"value": {"card": 1, "card": 2}, "message": "m"}'), 422)
        assert "duplicate key 'card'" in duplicate["detail"]

        bad_name = problem(api.put("/v1/configs/Payments/Limits", json={"value": 1, "message": "m"}), 422)
        assert "lowercase letters" in bad_name["detail"]

        stale = problem(api.put("/v1/configs/payments/limits", headers={"If-Match": "7"},
                                json={"value": {"card": 1}, "message": "m"}), 409)
        assert stale["current_version"] == 1

        missing_match = problem(api.put("/v1/configs/payments/limits", json={"value": {"card": 1}, "message": "m"}),
                                428)
        assert "If-Match: 1" in missing_match["detail"]

        no_reason = problem(api.put("/v1/configs/payments/new", json={"value": {}, "message": "  "}), 422)
        assert "reason" in no_reason["detail"]

        assert "'payments/nope'" in problem(api.get("/v1/configs/payments/nope"), 404)["detail"]
        assert "no version 9" in problem(api.get("/v1/configs/payments/limits/-/revisions/9"), 404)["detail"]
        assert revisions(api, "payments/limits") == 1
        assert revisions(api, "payments/new") == 0


def test_oversized_bodies_get_413(server) -> None:
    with server.client() as api:
        big = {"value": {"blob": "x" * (1024 * 1024 + 10)}, "message": "m"}
        body = problem(api.put("/v1/configs/big/one", json=big), 413)
        assert "limit" in body["detail"]
        assert revisions(api, "big/one") == 0


def test_tokens_roles_and_scopes_over_http(server) -> None:
    with server.client() as admin:
        created = admin.post("/v1/tokens", json={"role": "editor", "scopes": ["payments/*"], "name": "ci"}).json()
        secret = created["token"]
        assert secret.startswith("rf_")
        assert all(t.get("token") is None for t in admin.get("/v1/tokens").json()["items"])
    with httpx.Client(base_url=server.url) as anonymous:
        assert problem(anonymous.get("/v1/configs"), 401)
        assert anonymous.get("/healthz").status_code == 200
        wrong = anonymous.get("/v1/configs", headers={"Authorization": "Bearer rf_guessed_secret_value"})
        assert "rf_guessed_secret_value" not in problem(wrong, 401)["detail"]
    with server.client(secret) as editor:
        editor.put("/v1/configs/payments/fees", json={"value": 1, "message": "m"}).raise_for_status()
        outside = problem(editor.put("/v1/configs/search/ranking", json={"value": 1, "message": "m"}), 403)
        assert "payments/*" in outside["detail"]
        assert problem(editor.get("/v1/tokens"), 403)
        assert {e["subject"] for e in editor.get("/v1/audit").json()["items"]} == {"payments/fees"}
    with server.client() as admin:
        admin.delete(f"/v1/tokens/{created['id']}").raise_for_status()
    with server.client(secret) as revoked:
        assert "revoked" in problem(revoked.get("/v1/configs"), 401)["detail"]
    log = server.log_path.read_text()
    assert secret not in log and server.admin_token not in log


def test_validate_endpoint_reports_problems_and_diff_without_storing(server) -> None:
    with server.client() as api:
        api.put("/v1/configs/app/flags", json={"value": {"a": 1}, "message": "m"}).raise_for_status()
        api.put("/v1/schemas/app/flags", json={"schema": {"properties": {"a": {"type": "integer"}}},
                                               "message": "m"}).raise_for_status()
        result = api.post("/v1/validate", json={"name": "app/flags", "value": {"a": "one"}}).json()
        assert not result["valid"]
        assert result["problems"][0]["pointer"] == "/a"
        assert result["changes"] == [{"op": "replace", "path": "/a", "value": "one", "old": 1}]
        assert (result["schema_pattern"], result["current_version"]) == ("app/flags", 1)
        assert revisions(api, "app/flags") == 1


@pytest.mark.parametrize("path", ["/v1/configs/a/b", "/v1/audit", "/v1/tokens", "/v1/schemas", "/v1/whoami"])
def test_every_endpoint_but_health_needs_a_token(server, path: str) -> None:
    assert httpx.get(server.url + path).status_code == 401
