"""Routes under /auth/."""

from django.urls import path

from accounts import browser, oauth, session_views, views

app_name = "accounts"

urlpatterns = [
    path("signup", views.SignupView.as_view(), name="signup"),
    path("login", views.LoginView.as_view(), name="login"),
    path("refresh", views.RefreshView.as_view(), name="refresh"),
    path("logout", views.LogoutView.as_view(), name="logout"),
    path("logout-all", session_views.LogoutAllView.as_view(), name="logout-all"),
    path("password", views.PasswordChangeView.as_view(), name="password"),
    path("sessions", session_views.SessionListView.as_view(), name="sessions"),
    path("events", session_views.SecurityEventListView.as_view(), name="events"),
    # Any segment reaches the view, so a malformed id is "Session not found" too.
    path("sessions/<str:session_id>", session_views.SessionDetailView.as_view(), name="session"),
    # For other services: RFC 7662 introspection and RFC 7009 revocation.
    path("introspect", oauth.IntrospectionView.as_view(), name="introspect"),
    path("revoke", oauth.RevocationView.as_view(), name="revoke"),
    # Cookie mode for browsers; the refresh cookie's path is this prefix.
    path("browser/login", browser.BrowserLoginView.as_view(), name="browser-login"),
    path("browser/refresh", browser.BrowserRefreshView.as_view(), name="browser-refresh"),
    path("browser/logout", browser.BrowserLogoutView.as_view(), name="browser-logout"),
]
