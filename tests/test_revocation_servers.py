"""Two app servers (gunicorn, 4 workers each), one database, one Redis of the test's own:
a session ended through A is refused by B on the very next request, with B authenticating
from the revocation list in Redis; and through Redis stopping, coming back empty, and
being flushed under load, no ended session gets in and nothing answers 5xx."""

import http.client
import http.cookies
import os
import re
import signal
import subprocess
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from django.contrib.auth import get_user_model
from redis import Redis

from tests.appservers import REQUEST_TIMEOUT, START_TIMEOUT, Server, pytest_database_url
from tests.conftest import PASSWORD
from tests.redis_process import RedisProcess
from tests.reporting import report

# PostgreSQL: eight gunicorn workers writing at once is a job for the real database.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgres_only")]

ROUNDS = 1000
THREADS = 4
# The brute-force limits would (rightly) stop a thousand logins a minute from one address.
UNLIMITED = {
    f"THROTTLE_{name}_RATE": "1000000/minute"
    for name in ("LOGIN", "LOGIN_FAILURE", "USERNAME_FAILURE", "TODO_WRITE")
}


class Cluster:
    """Servers A and B on the test database and a Redis of this test's own."""

    def __init__(self, tmp_path, **environment) -> None:
        self.redis_process = RedisProcess().start()
        self.redis = Redis.from_url(self.redis_process.url)
        database = pytest_database_url()
        env = {
            "REDIS_URL": self.redis_process.url,
            "REVOCATION_FEED": "1",
            **UNLIMITED,
            **environment,
        }
        self.a = Server(database, tmp_path / "a.log", workers=4, **env)
        self.b = Server(database, tmp_path / "b.log", workers=4, **env)
        for server in (self.a, self.b):
            server.wait_until_healthy(START_TIMEOUT)

    def stop(self) -> None:
        self.a.stop()
        self.b.stop()
        self.redis_process.close()


@pytest.fixture
def cluster(tmp_path):
    running = Cluster(tmp_path)
    yield running
    running.stop()


def login(server: Server, username: str, password: str = PASSWORD) -> dict:
    status, _, body = server.call(
        "POST", "/auth/login", {"username": username, "password": password}
    )
    assert status == 200, body
    return body


def todos_status(server: Server, access: str) -> int:
    return server.call("GET", "/todos", token=access)[0]


class AdminBrowser:
    """An operator in the admin of one server: signs in, then posts its forms with CSRF."""

    def __init__(self, server: Server, username: str, password: str) -> None:
        self.server = server
        self.cookies: dict[str, str] = {}
        page = self.request("GET", "/admin/login/")[2]
        self.request(
            "POST",
            "/admin/login/?next=/admin/",
            {"username": username, "password": password, "next": "/admin/"},
            csrf=self.csrf_of(page),
        )
        status, _, page = self.request("GET", "/admin/")
        assert status == 200 and "Log out" in page, "the operator could not sign in"
        self.csrf = self.csrf_of(page)

    @staticmethod
    def csrf_of(page: str) -> str:
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    def request(self, method, path, form=None, csrf=None) -> tuple[int, dict, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=REQUEST_TIMEOUT)
        headers = {
            "Host": "localhost",
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
        }
        body = None
        if form is not None:
            body = urllib.parse.urlencode(
                {**form, "csrfmiddlewaretoken": csrf or self.csrf}, doseq=True
            )
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in http.cookies.SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response.status, dict(response.headers), text

    def post(self, path: str, form: dict) -> int:
        return self.request("POST", path, form)[0]


def run_rounds(rounds: int, one_round) -> list:
    """`one_round(i)` for i in range(rounds) in THREADS threads, what each returned.

    Thread t runs rounds t, t + THREADS, ... one after another, so what a round does with
    the user `number % THREADS` never overlaps another round of that user.
    """

    def lane(first: int) -> list:
        return [(number, one_round(number)) for number in range(first, rounds, THREADS)]

    with ThreadPoolExecutor(THREADS) as pool:
        done = [result for results in pool.map(lane, range(THREADS)) for result in results]
    return [result for _, result in sorted(done)]


def make_users(count: int, prefix: str, **fields) -> list[str]:
    names = [f"{prefix}{number}" for number in range(count)]
    for name in names:
        get_user_model().objects.create_user(name, password=PASSWORD, **fields)
    return names


def test_a_thousand_logouts_through_a_each_refused_by_b_at_once(cluster, request):
    names = make_users(THREADS, "reader")

    def one_round(number: int) -> int:
        pair = login(cluster.a, names[number % THREADS])
        assert todos_status(cluster.b, pair["access_token"]) == 200
        status, _, body = cluster.a.call(
            "POST", "/auth/logout", {"refresh_token": pair["refresh_token"]}, pair["access_token"]
        )
        assert status == 200, body
        return todos_status(cluster.b, pair["access_token"])

    after = run_rounds(ROUNDS, one_round)
    stats = cluster.redis.info("commandstats")
    reads = stats.get("cmdstat_mget", {}).get("calls", 0)
    report(
        request,
        f"logout through A, then the old token at B: {after.count(401)} x 401 of {ROUNDS} "
        f"(2 x {ROUNDS} requests at B; Redis read for {reads} of them, the rest decided "
        f"from memory; {stats['cmdstat_publish']['calls']} session ends pushed)",
    )
    assert after == [401] * ROUNDS
    # Every end was pushed, and B's workers decided from their feeds: Redis was read only
    # until each worker's feed was trusted.
    assert stats["cmdstat_publish"]["calls"] >= ROUNDS
    assert reads < ROUNDS / 10


def test_admin_revocations_password_changes_and_deactivations_through_a_refused_by_b(
    cluster, request
):
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    operators = [AdminBrowser(cluster.a, "root", PASSWORD) for _ in range(THREADS)]
    revoked, changing, deactivated = (make_users(THREADS, p) for p in ("rv", "pw", "da"))
    passwords = {name: PASSWORD for name in changing}
    users = get_user_model().objects

    def admin_revoke(number: int) -> int:
        pair = login(cluster.a, revoked[number % THREADS])
        assert todos_status(cluster.b, pair["access_token"]) == 200
        sid = jwt.decode(pair["access_token"], options={"verify_signature": False})["sid"]
        status = operators[number % THREADS].post(f"/admin/accounts/session/{sid}/revoke/", {})
        assert status == 302
        return todos_status(cluster.b, pair["access_token"])

    def password_change(number: int) -> int:
        name = changing[number % THREADS]
        kept, other = (
            login(cluster.a, name, passwords[name]),
            login(cluster.a, name, passwords[name]),
        )
        assert todos_status(cluster.b, other["access_token"]) == 200
        new = f"Another-strong-pass-{number}"
        status, _, body = cluster.a.call(
            "POST",
            "/auth/password",
            {"old_password": passwords[name], "new_password": new},
            kept["access_token"],
        )
        assert status == 200, body
        passwords[name] = new
        return todos_status(cluster.b, other["access_token"])

    def deactivation(number: int) -> int:
        name = deactivated[number % THREADS]
        users.filter(username=name).update(is_active=True)
        pair = login(cluster.a, name)
        assert todos_status(cluster.b, pair["access_token"]) == 200
        uid = users.get(username=name).pk
        form = {"action": "deactivate_users", "_selected_action": [uid]}
        assert operators[number % THREADS].post("/admin/auth/user/", form) == 302
        return todos_status(cluster.b, pair["access_token"])

    for name, one_round in (
        ("admin revoke", admin_revoke),
        ("password change", password_change),
        ("deactivation", deactivation),
    ):
        after = run_rounds(ROUNDS, one_round)
        report(request, f"{name} through A, then the old token at B: {after.count(401)} x 401")
        assert after == [401] * ROUNDS, name


def workers_of(server: Server) -> list[int]:
    """The process ids of `server`'s gunicorn workers."""
    found = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


def test_a_worker_stopped_through_a_logout_never_trusts_what_it_missed(cluster, request):
    """One of B's workers is stopped (SIGSTOP) while a session ends through A: its feed
    cannot acknowledge, so A waits out its lease (REVOCATION_LIST_SECONDS / 2, 1 s); once
    resumed, alone in serving B, it refuses the token at once."""
    [name] = make_users(1, "paused")
    pair = login(cluster.a, name)
    for _ in range(20):  # every worker of B has seen the token, its feed warm
        assert todos_status(cluster.b, pair["access_token"]) == 200
    workers = workers_of(cluster.b)
    assert len(workers) == 4
    paused, others = workers[0], workers[1:]
    os.kill(paused, signal.SIGSTOP)
    try:
        began = time.monotonic()
        status, _, _ = cluster.a.call(
            "POST", "/auth/logout", {"refresh_token": pair["refresh_token"]}, pair["access_token"]
        )
        took = time.monotonic() - began
        for pid in others:
            os.kill(pid, signal.SIGSTOP)
        os.kill(paused, signal.SIGCONT)
        after = [todos_status(cluster.b, pair["access_token"]) for _ in range(5)]
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    report(request, f"logout with a worker of B stopped: took {took:.2f} s, then {after} at B")
    assert status == 200 and took >= 1.0
    assert after == [401] * 5


def test_redis_stopped_and_back_empty_across_servers(cluster):
    get_user_model().objects.create_user("carol", password=PASSWORD)
    alive, ended = login(cluster.a, "carol"), login(cluster.a, "carol")
    assert todos_status(cluster.b, alive["access_token"]) == 200
    cluster.redis_process.stop()

    # The API keeps answering, from the database.
    assert todos_status(cluster.b, alive["access_token"]) == 200
    status, _, _ = cluster.a.call(
        "POST", "/auth/logout", {"refresh_token": ended["refresh_token"]}, ended["access_token"]
    )
    assert status == 200
    assert todos_status(cluster.b, ended["access_token"]) == 401

    cluster.redis_process.start()  # empty
    for server in (cluster.a, cluster.b, cluster.b, cluster.a):
        assert todos_status(server, ended["access_token"]) == 401
        assert todos_status(server, alive["access_token"]) == 200


def test_flushall_under_load_lets_no_ended_session_in_and_answers_no_5xx(cluster, request):
    names = make_users(THREADS, "flushed")
    stop = threading.Event()
    flushes = 0

    def flusher() -> None:
        nonlocal flushes
        while not stop.is_set():
            cluster.redis.flushall()
            flushes += 1
            time.sleep(0.05)

    statuses: list[int] = []

    def one_round(number: int) -> tuple[int, int]:
        pair = login(cluster.a if number % 2 else cluster.b, names[number % THREADS])
        other = cluster.b if number % 2 else cluster.a
        before = todos_status(other, pair["access_token"])
        status, _, _ = cluster.a.call(
            "POST", "/auth/logout", {"refresh_token": pair["refresh_token"]}, pair["access_token"]
        )
        statuses.extend((before, status))
        return before, todos_status(other, pair["access_token"])

    thread = threading.Thread(target=flusher, daemon=True)
    thread.start()
    try:
        rounds = run_rounds(300, one_round)
    finally:
        stop.set()
        thread.join(5)
    report(request, f"FLUSHALL x{flushes} under 300 login/logout rounds: no ended session accepted")
    assert flushes >= 5
    assert all(before == 200 for before, _ in rounds)
    assert all(after == 401 for _, after in rounds)
    assert set(statuses) == {200}
