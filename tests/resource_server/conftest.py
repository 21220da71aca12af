"""Fixtures: one fake API for the package, and resource servers cold, warm or fresh per test."""

import json

import pytest

from tests.resource_server.harness import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeApi,
    ResourceServer,
    server_env,
    wait_past,
)


@pytest.fixture(scope="package")
def api():
    """The fake API, shared by every test of the package."""
    fake = FakeApi()
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def _reset_api(api):
    """Each test starts from the fake API's defaults."""
    api.reset()


@pytest.fixture
def start(api, tmp_path):
    """Start resource servers for one test; every one is stopped after it."""
    started: list[ResourceServer] = []

    def start(**env: str) -> ResourceServer:
        server = ResourceServer(tmp_path / f"rs-{len(started)}.log", server_env(api, **env))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="package")
def cold(api, tmp_path_factory):
    """One server that never hears a heartbeat, so it introspects every token it accepts.

    It reads its credentials from a file, as `manage.py add_resource_server` prints them.
    """
    directory = tmp_path_factory.mktemp("cold")
    credentials = directory / "credentials.json"
    credentials.write_text(json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}))
    env = server_env(api, RS_CLIENT_ID=None, RS_CLIENT_SECRET=None)
    server = ResourceServer(directory / "rs.log", {**env, "RS_CREDENTIALS_FILE": str(credentials)})
    yield server
    server.stop()


@pytest.fixture(scope="package")
def warm_server(api, tmp_path_factory):
    """One server shared by the tests that only add to its state, each with sids of its own."""
    server = ResourceServer(tmp_path_factory.mktemp("warm") / "rs.log", server_env(api))
    wait_past(server.started_at)  # tokens minted from now on are issued after start-up
    yield server
    server.stop()


@pytest.fixture
def warm(warm_server, api):
    """The shared server, its channel proven whole by a fresh heartbeat."""
    assert warm_server.push(api.heartbeat())[0] == 202
    return warm_server


@pytest.fixture
def whole(start, api):
    """Start a server and prove its channel whole; tokens minted from now on are checked locally."""

    def whole(**env: str) -> ResourceServer:
        server = start(**env)
        wait_past(server.started_at)  # tokens minted from now on are issued after start-up
        assert server.push(api.heartbeat())[0] == 202
        return server

    return whole
