"""Every way a session ends, driven as a user, an administrator or code would."""

from django.urls import reverse

from accounts.models import Session
from tests.conftest import PASSWORD, bearer

# Every RevokeReason: a test that walks this list covers each way a session can end.
REASONS = (
    "logout",
    "logout_all",
    "user",
    "password_change",
    "user_deactivated",
    "user_deleted",
    "admin",
    "reuse_detected",
    "revoked_by_client",
    "session_limit",
)


def end_by(reason, api_client, tokens, user, admin_client, settings):
    """End the session of `tokens` the way `reason` (a RevokeReason) names."""
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    if reason == "logout":
        api_client.post("/auth/logout", {"refresh_token": refresh}, format="json", **bearer(access))
    elif reason == "logout_all":
        api_client.post("/auth/logout-all", {}, format="json", **bearer(access))
    elif reason == "user":
        sid = Session.objects.get(user=user).pk
        api_client.delete(f"/auth/sessions/{sid}", **bearer(access))
    elif reason == "password_change":
        user.set_password("another-Strong-pass-77")
        user.save()
    elif reason == "user_deactivated":
        user.is_active = False
        user.save()
    elif reason == "admin":
        sid = Session.objects.get(user=user).pk
        admin_client.post(
            reverse("admin:accounts_session_changelist"),
            {"action": "revoke_selected", "_selected_action": [sid]},
        )
    elif reason == "reuse_detected":
        settings.ACCOUNTS = {**settings.ACCOUNTS, "REFRESH_REUSE_GRACE_SECONDS": 0}
        api_client.post("/auth/refresh", {"refresh_token": refresh}, format="json")
        api_client.post("/auth/refresh", {"refresh_token": refresh}, format="json")
    elif reason == "revoked_by_client":
        api_client.post(
            "/auth/revoke", f"token={refresh}", content_type="application/x-www-form-urlencoded"
        )
    elif reason == "user_deleted":
        user.delete()
    elif reason == "session_limit":
        settings.ACCOUNTS = {**settings.ACCOUNTS, "SESSION_LIMIT_PER_USER": 1}
        api_client.post(
            "/auth/login", {"username": user.username, "password": PASSWORD}, format="json"
        )
    else:
        raise ValueError(reason)
