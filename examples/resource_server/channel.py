"""What the pushed events told this process, and whether it may trust it: thread-safe, bounded."""

import threading
from collections import OrderedDict
from dataclasses import dataclass

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
VERIFICATION = "https://schemas.openid.net/secevent/ssf/event-type/verification"
REVOKED = "revoked"  # Channel.judge's verdict for a token whose session ended


@dataclass(frozen=True)
class SecurityEvent:
    """One verified SET: its jti, its single event type, and what that event is about."""

    jti: str
    type: str
    issued_at: float
    sid: str | None = None
    sub: str | None = None
    reason: str | None = None


class Channel:
    """Revoked sessions, seen jtis and the heartbeat clock, behind one lock.

    A token may be judged locally only while the channel is proven whole (a heartbeat
    issued within the tolerance has arrived: every event written before it has reached
    us) and only if nothing that could concern it has been forgotten. Forgetting is one
    rule: `forgotten_before` starts at the start-up time (events heard before a restart
    are lost) and moves forward whenever a revoked sid is dropped (expired or over the
    cap) or a signed event is refused; tokens issued before it are introspected instead.
    """

    def __init__(
        self,
        *,
        now: float,
        tolerance: float,
        memory: float,
        max_remembered: int,
        leeway: float,
    ) -> None:
        self._lock = threading.Lock()
        self.started_at = now
        self._tolerance = tolerance
        self._memory = memory
        self._max = max_remembered
        self._leeway = leeway
        self._forgotten_before = now
        self._heartbeat_at: float | None = None  # when the newest heartbeat was issued
        self._last_heard: float | None = None
        self._revoked: OrderedDict[str, float] = OrderedDict()  # sid -> when we learned it
        self._seen: OrderedDict[str, float] = OrderedDict()  # jti -> when it arrived

    def record(self, event: SecurityEvent, now: float) -> bool:
        """Apply an event once; False for a jti already applied (a retry), which changes nothing."""
        with self._lock:
            self._last_heard = now
            # Check, apply and mark under one lock, so two concurrent deliveries of one
            # event apply it once.
            if event.jti in self._seen:
                return False
            if event.type == SESSION_REVOKED:
                self._revoked[event.sid] = now
                self._revoked.move_to_end(event.sid)
            elif event.type == VERIFICATION:
                # A heartbeat proves what was written before it was issued, not before it
                # arrived; a late one (a backlog, a retry) proves less. Never trust a
                # future time from a clock that runs ahead of ours.
                issued = min(event.issued_at, now)
                if self._heartbeat_at is None or issued > self._heartbeat_at:
                    self._heartbeat_at = issued
            self._seen[event.jti] = now
            self._forget(now)
            return True

    def lost_event(self, now: float) -> None:
        """A signed event was refused and will not come again: distrust tokens issued until now.

        It may have revoked a session; tokens issued later cannot belong to that session.
        """
        with self._lock:
            self._forgotten_before = max(self._forgotten_before, now)

    def judge(self, sid: str, issued_at: float, now: float) -> str | None:
        """REVOKED, or why this token must be introspected, or None: decide it locally."""
        with self._lock:
            if sid in self._revoked:
                return REVOKED
            not_whole = self._not_whole(now)
            if not_whole:
                return not_whole
            # The leeway covers the API's clock running ahead of ours: a token issued
            # just before start-up must not look issued after it.
            if issued_at < self._forgotten_before + self._leeway:
                return "issued before what this process remembers"
            return None

    def state(self, now: float) -> dict:
        """The channel for /healthz: whole or not, when last heard, and what is remembered."""
        with self._lock:
            self._forget(now)
            return {
                "whole": self._not_whole(now) is None,
                "started_at": self.started_at,
                "last_heard": self._last_heard,
                "last_heartbeat_issued": self._heartbeat_at,
                "introspects_tokens_issued_before": self._forgotten_before + self._leeway,
                "revoked_sids": len(self._revoked),
                "seen_jtis": len(self._seen),
            }

    def _not_whole(self, now: float) -> str | None:
        """Why the channel is not proven whole, or None when it is; the lock is held."""
        if self._heartbeat_at is None:
            return "no heartbeat since start-up"
        if now - self._heartbeat_at > self._tolerance:
            return "no heartbeat within the tolerance"
        return None

    def _forget(self, now: float) -> None:
        """Drop the oldest entries past their time or over the cap; the lock is held."""
        cutoff = now - self._memory
        while self._revoked:
            sid, learned = next(iter(self._revoked.items()))
            if learned >= cutoff and len(self._revoked) <= self._max:
                break
            del self._revoked[sid]
            # Tokens of that sid issued before we learned of it would pass again:
            # from now on, every token issued that early is introspected.
            self._forgotten_before = max(self._forgotten_before, learned)
        while self._seen:
            jti, arrived = next(iter(self._seen.items()))
            if arrived >= cutoff and len(self._seen) <= self._max:
                break
            # Forgetting a jti is harmless: applying an event again changes nothing.
            del self._seen[jti]
