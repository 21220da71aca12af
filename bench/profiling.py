"""`python -m bench --profile`: where GET /todos and refresh spend their time, per side.

A script, never imported: the runner passes the tokens (`python -m bench.profiling
profile <json>`), and it profiles in-process through the Django test client with
pyinstrument, writes each profile under bench/results/ and prints one JSON line.
"""
# ruff: noqa: E402 - Django is set up before anything imports a model.

import django

django.setup()

import json
import sys
from pathlib import Path

from django.test import Client
from pyinstrument import Profiler

from bench.config import REFRESHING, SIDES

RESULTS = Path(__file__).resolve().parent / "results"


def _profile(name: str, requests: int, one) -> float:
    """Profile `requests` calls of one(), write the text profile; milliseconds per call."""
    for _ in range(10):  # warm-up
        one()
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(requests):
        one()
    profiler.stop()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"profile-{name}.txt").write_text(profiler.output_text(unicode=True, color=False))
    return profiler.last_session.duration * 1000 / requests


def profile(tokens: dict, requests: int = 200) -> dict:
    """Milliseconds per request under the profiler: GET /todos per side, refresh per side."""
    client = Client()
    results = {}
    for name, side in SIDES.items():
        header = {"HTTP_AUTHORIZATION": f"Bearer {tokens[name]['access']}"}

        def get(path=side.todos, header=header):
            assert client.get(path, **header).status_code == 200

        results[f"todos-{name}"] = _profile(f"todos-{name}", requests, get)
    for name in REFRESHING:
        side, chain = SIDES[name], {"token": tokens[name]["refresh"]}

        def refresh(side=side, chain=chain):
            body = {side.refresh_field: chain["token"]}
            response = client.post(side.refresh, body, content_type="application/json")
            assert response.status_code == 200, response.content
            chain["token"] = response.json()[side.refresh_field]

        results[f"refresh-{name}"] = _profile(f"refresh-{name}", requests // 2, refresh)
    return results


if __name__ == "__main__":
    print(json.dumps(profile(**json.loads(sys.argv[2]))))
