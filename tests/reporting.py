"""Counts that robustness tests print in pytest's terminal summary, so every run shows them."""

import pytest


class _CountsSummary:
    """A pytest plugin, registered on first use, that prints collected lines at the end."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def pytest_terminal_summary(self, terminalreporter) -> None:
        """Print one section with every line reported during the run."""
        terminalreporter.section("robustness counts")
        for line in self.lines:
            terminalreporter.write_line(line)


def report(request: pytest.FixtureRequest, line: str) -> None:
    """Add `line` to the run's "robustness counts" summary (and print it for -s / -rA)."""
    manager = request.config.pluginmanager
    plugin = manager.get_plugin("robustness-counts")
    if plugin is None:
        plugin = _CountsSummary()
        manager.register(plugin, "robustness-counts")
    plugin.lines.append(line)
    print(line)
