"""The results table: one row per measure, with its target and whether it was met."""

from bench.config import LARGE_DB, MAIN_DB


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _verdict(ok: bool, missed: str = "") -> str:
    return "met" if ok else f"**missed**{': ' + missed if missed else ''}"


def rows(results: dict) -> list[tuple[str, ...]]:
    """Table rows: measure, ours, baseline, ratio, target, result."""
    out = []
    t = results.get("todos")
    if t:
        ratio = t["ours"]["rps"] / t["stock"]["rps"]
        out += [
            (
                "`GET /todos` throughput",
                f"{t['ours']['rps']:.0f} req/s",
                f"{t['stock']['rps']:.0f} req/s",
                f"{ratio:.3f}",
                ">= 0.95",
                _verdict(ratio >= 0.95, f"{(0.95 - ratio) * 100:.1f} points short"),
            ),
            (
                "`GET /todos` throughput, proposed fix (bench prototype)",
                f"{t['proposed']['rps']:.0f} req/s",
                f"{t['stock']['rps']:.0f} req/s",
                f"{t['proposed']['rps'] / t['stock']['rps']:.3f}",
                ">= 0.95",
                "what the fix below would give",
            ),
            *(
                (
                    f"`GET /todos` {p}",
                    _ms(t["ours"][p]),
                    _ms(t["stock"][p]),
                    f"{t['ours'][p] / t['stock'][p]:.3f}",
                    "report",
                    f"errors: {t['ours']['errors']} / {t['stock']['errors']}",
                )
                for p in ("p50", "p99")
            ),
        ]
    r = results.get("refresh")
    if r:
        o, s = r["ours"], r["stock"]
        ok = o["queries"] <= 5 and o["transactions"] == 1
        ratio = o["p50"] / s["p50"]
        out += [
            (
                "refresh: queries, transactions",
                f"{o['queries']} in {o['transactions']} ({o['autocommit']} outside)",
                f"{s['queries']} in {s['transactions']} ({s['autocommit']} outside)",
                "",
                "<= 5 in 1",
                _verdict(ok),
            ),
            (
                "refresh p50",
                _ms(o["p50"]),
                _ms(s["p50"]),
                f"{ratio:.3f}",
                "<= 0.8",
                _verdict(ratio <= 0.8, f"by {ratio - 0.8:.2f}"),
            ),
        ]
    lg = results.get("login")
    if lg:
        ratio = lg["login"]["p50"] / lg["verify"]["p50"]
        out.append(
            (
                "login p50 / one hash verify",
                _ms(lg["login"]["p50"]),
                f"{_ms(lg['verify']['p50'])} ({lg['algorithm']}, {lg['iterations']:,} it.)",
                f"{ratio:.3f}",
                "<= 1.10",
                _verdict(ratio <= 1.10, f"by {ratio - 1.10:.2f}"),
            )
        )
    sc = results.get("scale")
    if sc:
        for key, label in (("refresh_p50", "refresh p50"), ("get_p50", "authenticated GET p50")):
            ratio = sc["large"][key] / sc["small"][key]
            out.append(
                (
                    f"scale: {label}, 1M vs 1k tokens",
                    _ms(sc["large"][key]),
                    _ms(sc["small"][key]),
                    f"{ratio:.3f}",
                    "<= 1.2",
                    _verdict(ratio <= 1.2, f"by {ratio - 1.2:.2f}"),
                )
            )
    ad = results.get("admin")
    if ad:
        large, small = ad[LARGE_DB]["pages"], ad[MAIN_DB]["pages"]
        for name, page in large.items():
            base = small.get(name)
            out.append(
                (
                    f"admin: {name} changelist at 1M",
                    f"{page['p50_ms']:.0f} ms, {page['queries']} queries (HTTP {page['status']})",
                    f"{base['p50_ms']:.0f} ms at 1k" if base else "",
                    "",
                    "report",
                    "",
                )
            )
    cl = results.get("cleanup")
    if cl is not None:
        if not cl.get("available"):
            out.append(("cleanup of 1M expired rows", "command not found", "", "", "", "not run"))
        else:
            deleted = (
                cl["before"]["outstanding_tokens"]["n"] - cl["after"]["outstanding_tokens"]["n"]
            )
            ok = cl["exit_code"] == 0 and cl["peak_rss_mb"] < 200
            out.append(
                (
                    "cleanup: `manage.py cleanup_tokens`",
                    f"{cl['seconds']:.1f} s, peak RSS {cl['peak_rss_mb']:.0f} MB",
                    f"{deleted:,} tokens deleted",
                    "",
                    "RSS < 200 MB",
                    _verdict(ok, f"exit {cl['exit_code']}, {cl['peak_rss_mb']:.0f} MB"),
                )
            )
    ra = results.get("race")
    if ra:
        o, s = ra["ours"], ra["stock"]
        ok = o["winners"] == 1 and o["server_errors"] == 0
        out.append(
            (
                "race: 50 parallel refreshes of one token",
                f"{o['winners']} winner, {o['server_errors']} 5xx ({_statuses(o)})",
                f"stock: {s['winners']} winners, {s['server_errors']} 5xx",
                "",
                "1 winner, 0 5xx",
                _verdict(ok),
            )
        )
    ti = results.get("two_instances")
    if ti:
        ok = ti["b_after_logout"] == 401 and ti["revoked_message"]
        out.append(
            (
                "two instances: logout on A, call B",
                f"B: {ti['b_before_logout']} before, {ti['b_after_logout']} right after "
                f"({ti['b_after_logout_ms']:.1f} ms later)",
                "",
                "",
                "401 at once",
                _verdict(ok),
            )
        )
    return out


def _statuses(race: dict) -> str:
    return ", ".join(f"{n} x {status}" for status, n in race["statuses"].items())
