"""The accounts app in a project of its own (tests/hostproject): startproject plus three lines.

The host's suite runs in a fresh interpreter with its own settings and URLconf; .ci/run
also runs it from a wheel built from this checkout.
"""

import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def test_a_startproject_project_gets_sessions_from_the_app_alone():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-c", "tests/hostproject/pytest.ini"],
        cwd=BASE_DIR,
        # Nothing of this suite's environment (its settings module, its secrets).
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(BASE_DIR)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "5 passed" in result.stdout


def test_the_host_project_names_nothing_of_this_one():
    """Its files could be any project's: no import of project, todos or tests."""
    for path in (BASE_DIR / "tests" / "hostproject").glob("*.py"):
        text = path.read_text()
        for package in ("project", "todos", "tests", "bench"):
            assert f"from {package}" not in text and f"import {package}" not in text, path
