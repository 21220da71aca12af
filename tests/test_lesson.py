"""The lesson, step by step, exactly as its client runs it."""

from tests.conftest import bearer


def test_lesson_login_refresh_todos_logout_kills_both_tokens(api_client, user, password):
    login = api_client.post(
        "/auth/login", {"username": user.username, "password": password}, format="json"
    )
    assert login.status_code == 200
    assert login.json()["message"] == "Login successful"

    refresh = api_client.post(
        "/auth/refresh", {"refresh_token": login.json()["refresh_token"]}, format="json"
    )
    assert refresh.status_code == 200
    pair = refresh.json()
    assert set(pair) == {"access_token", "refresh_token"}
    assert pair["access_token"] != login.json()["access_token"]
    assert pair["refresh_token"] != login.json()["refresh_token"]

    todos = api_client.get("/todos", **bearer(pair["access_token"]))
    assert todos.status_code == 200
    assert todos.json() == []

    logout = api_client.post(
        "/auth/logout",
        {"refresh_token": pair["refresh_token"]},
        format="json",
        **bearer(pair["access_token"]),
    )
    assert logout.status_code == 200
    assert logout.json() == {"message": "Logout successful"}

    after = api_client.get("/todos", **bearer(pair["access_token"]))
    assert after.status_code == 401
    assert after.json() == {
        "error": "You have been logged out. Please log in again.",
        "code": "session_revoked",
    }
    assert after["WWW-Authenticate"] == 'Bearer realm="api", error="invalid_token"'

    again = api_client.post(
        "/auth/refresh", {"refresh_token": pair["refresh_token"]}, format="json"
    )
    assert again.status_code == 401
    assert again.json() == {"error": "Invalid refresh token", "code": "invalid_refresh_token"}
