"""The key ring and the resource servers in the admin: readable, never a secret on a page."""

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import ResourceServer, SigningKey


@pytest.fixture
def gateway(db) -> dict:
    out = io.StringIO()
    call_command("add_resource_server", "gateway", "--push-url", "http://127.0.0.1:9/x", stdout=out)
    return json.loads(out.getvalue())


def test_the_key_ring_is_listed_without_its_private_keys(admin_client, tokens):
    key = SigningKey.objects.get()
    listing = admin_client.get(reverse("admin:accounts_signingkey_changelist"))
    page = admin_client.get(reverse("admin:accounts_signingkey_change", args=[key.pk]))
    assert listing.status_code == page.status_code == 200
    for response in (listing, page):
        text = response.content.decode()
        assert key.kid in text and "active" in text
        assert key.encrypted_private_key[:40] not in text and "PRIVATE KEY" not in text


def test_keys_cannot_be_added_changed_or_deleted_in_the_admin(admin_client, tokens):
    key = SigningKey.objects.get()
    assert admin_client.get(reverse("admin:accounts_signingkey_add")).status_code == 403
    change = admin_client.post(
        reverse("admin:accounts_signingkey_change", args=[key.pk]), {"state": "retired"}
    )
    assert change.status_code == 403
    assert SigningKey.objects.get().state == "active"


def test_resource_servers_are_listed_and_can_be_disabled(admin_client, gateway):
    server = ResourceServer.objects.get()
    page = admin_client.get(reverse("admin:accounts_resourceserver_changelist")).content.decode()
    assert "gateway" in page and server.client_id in page
    assert gateway["client_secret"] not in page and server.secret_hash not in page
    admin_client.post(
        reverse("admin:accounts_resourceserver_changelist"),
        {"action": "disable_selected", "_selected_action": [server.pk]},
    )
    assert ResourceServer.objects.get().enabled is False


def test_a_resource_server_is_registered_by_the_command_not_a_form(admin_client, db):
    assert admin_client.get(reverse("admin:accounts_resourceserver_add")).status_code == 403


def test_the_push_url_is_editable_and_the_secret_is_not(admin_client, gateway):
    server = ResourceServer.objects.get()
    url = reverse("admin:accounts_resourceserver_change", args=[server.pk])
    page = admin_client.get(url).content.decode()
    assert server.secret_hash not in page
    admin_client.post(
        url,
        {
            "name": "gateway",
            "enabled": "on",
            "push_url": "https://gateway.internal/events",
            "secret_hash": "0" * 64,
        },
    )
    server.refresh_from_db()
    assert server.push_url == "https://gateway.internal/events"
    assert server.check_secret(gateway["client_secret"])
