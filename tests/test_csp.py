"""Every HTML page carries a Content-Security-Policy without 'unsafe-inline' (django-csp)."""

import re

import pytest
from django.urls import reverse


def directives(response) -> dict[str, list[str]]:
    """The response's policy, directive by directive (django-csp writes them in any order)."""
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split("; ")}


SITE_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


@pytest.mark.parametrize(
    "url",
    [
        reverse("admin:index"),
        reverse("admin:accounts_session_changelist"),
        reverse("admin:auth_user_changelist"),
        reverse("admin:password_change"),
    ],
)
def test_admin_pages_carry_the_site_policy(admin_client, url):
    response = admin_client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert directives(response) == SITE_POLICY


def test_admin_login_page_of_a_visitor_carries_the_site_policy(client, db):
    assert directives(client.get(reverse("admin:login"))) == SITE_POLICY


def test_api_docs_page_allows_data_images_and_its_one_nonced_style(client, db):
    response = client.get("/api/docs/")

    policy = directives(response)
    nonce = re.search(r'<style nonce="([^"]+)">', response.content.decode()).group(1)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert {k: v for k, v in policy.items() if k not in ("style-src", "img-src")} == {
        k: v for k, v in SITE_POLICY.items() if k not in ("style-src", "img-src")
    }


def test_api_docs_page_has_no_inline_script(client, db):
    html = client.get("/api/docs/").content.decode()

    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    # Its start-up script is a file of its own, served as JavaScript.
    script = client.get("/api/docs/", {"script": ""})
    assert script["Content-Type"] == "application/javascript"
    assert "SwaggerUIBundle" in script.content.decode()


def test_each_docs_page_gets_a_fresh_nonce(client, db):
    first, second = (directives(client.get("/api/docs/"))["style-src"] for _ in range(2))

    assert first != second


def test_web_client_keeps_its_own_stricter_policy(client, db):
    policy = directives(client.get("/"))

    assert policy["form-action"] == ["'none'"]
    assert "font-src" not in policy


def test_api_schema_carries_the_site_policy(client, db):
    assert directives(client.get("/api/schema/")) == SITE_POLICY
