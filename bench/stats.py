"""Rounds that alternate the sides of a comparison, and the statistics over them."""

import statistics
from collections.abc import Callable


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def alternate(rounds: int, sides: dict[str, Callable[[], dict]]) -> dict[str, list[dict]]:
    """Run the sides in turn, A B A B ..., so background load falls on each alike."""
    results: dict[str, list[dict]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            results[name].append(run())
    return results


def medians(rounds: list[dict]) -> dict:
    """The median of each numeric key over rounds."""
    return {
        key: statistics.median(r[key] for r in rounds)
        for key, value in rounds[0].items()
        if isinstance(value, int | float)
    }
