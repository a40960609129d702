"""Alert episodes: repeated anomalies of one machine and type, close in time, are one
episode (opened, updated, closed), so that a fault does not flood the dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta

from detectors.state import EpisodesState
from schemas.events import SEVERITY_RANK, AnomalyDetected, AnomalyEpisode, stable_event_id


class EpisodeTracker:
    """One machine's open episode: one fault, one alert.

    An anomaly opens an episode unless one is open; it joins the open one, whatever its
    type, if it comes within ``gap`` of that episode's last anomaly (a drop and the spike
    of the recovery after it are one fault, not two toasts). The episode keeps the type of
    the anomaly that opened it. It is closed by the first reading (any) later than ``gap``
    after its last anomaly. "updated" goes out when the
    severity rises and every ``update_every`` anomalies, not for each one.

    No flapping: an anomaly within ``hold`` of the opening of the episode that closed last
    reopens that episode (an "updated" event with status "updated", same episode id) instead
    of opening a new one, so a fault that comes and goes is one alert until ``hold`` has
    passed since it was first raised.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> tr = EpisodeTracker(gap=timedelta(minutes=10))
    >>> def a(minute, sev="warning"):
    ...     return AnomalyDetected(
    ...         event_id=f"a{minute}", occurred_at=t + timedelta(minutes=minute), machine_id="m",
    ...         machine_name="M", timestamp=t + timedelta(minutes=minute), metric="power_kw",
    ...         value=1.0, expected_value=0.5, deviation_percent=100.0, score=1.0,
    ...         threshold=0.9, anomaly_score=5.0, severity=sev, anomaly_type="spike",
    ...         detector="hst")
    >>> [e.status for m in (0, 1, 2) for e in tr.on_anomaly(a(m))]
    ['opened']
    >>> [e.status for e in tr.on_anomaly(a(3, "critical"))]
    ['updated']
    >>> [(e.status, e.count) for e in tr.on_time(t + timedelta(minutes=30))]
    [('closed', 4)]
    """

    def __init__(self, gap: timedelta = timedelta(minutes=15), update_every: int = 10,
                 hold: timedelta = timedelta(0)) -> None:
        self.gap = gap
        self.update_every = update_every
        self.hold = hold

    _s: EpisodesState | None = None  # built on first use

    def _state(self) -> EpisodesState:
        s = self._s
        if s is None:
            s = self._s = EpisodesState()
        return s

    @property
    def open(self) -> dict[str, AnomalyEpisode]:
        """The open episode by the type that opened it (one at most; a state written when
        episodes were per type may hold several until they close)."""
        return self._state().open

    @property
    def current(self) -> AnomalyEpisode | None:
        """The open episode the latest anomaly is in (None when none is open)."""
        eps = self._state().open
        return max(eps.values(), key=lambda e: e.last_at) if eps else None

    def state(self) -> EpisodesState:
        """The open episodes as data (the live struct: encode it, do not keep it)."""
        return self._state()

    def load(self, state: EpisodesState) -> None:
        """Take the state `state` gave."""
        self._s = state

    def _event(self, ep: AnomalyEpisode, status: str, at: datetime, **changes: object) -> AnomalyEpisode:
        fields = {f: getattr(ep, f) for f in ep.__struct_fields__}
        fields.update(changes)
        fields.update(status=status, occurred_at=at, event_id=stable_event_id(
            "anomaly_episode", ep.episode_id, status, fields["count"], at.isoformat()))
        return AnomalyEpisode(**fields)

    def on_anomaly(self, a: AnomalyDetected) -> list[AnomalyEpisode]:
        """Fold one anomaly; return the episode events it causes (maybe none)."""
        ep = self.current
        out: list[AnomalyEpisode] = []
        if ep is not None and a.timestamp - ep.last_at > self.gap:
            out.append(self._close(ep, ep.last_at))
            ep = None
        last = self._state().last
        if ep is None and last is not None and a.timestamp - last.first_at <= self.hold:
            ep = self._event(last, "updated", a.timestamp)  # the same fault again: reopen
            self.open[ep.anomaly_type] = ep
            self._state().last = None
            out.append(ep)
        if ep is None:
            new = AnomalyEpisode(
                event_id=stable_event_id("anomaly_episode", a.event_id, "opened"),
                occurred_at=a.timestamp, machine_id=a.machine_id, machine_name=a.machine_name,
                episode_id=a.event_id, status="opened", anomaly_type=a.anomaly_type,
                severity=a.severity, first_at=a.timestamp, last_at=a.timestamp, count=1,
                peak_value=a.value, expected_value=a.expected_value, explanation=a.explanation)
            self.open[a.anomaly_type] = new
            return [*out, new]
        worse = SEVERITY_RANK[a.severity] > SEVERITY_RANK[ep.severity]
        count = ep.count + 1
        peak = max(ep.peak_value, a.value) if a.value >= (a.expected_value or 0) else min(
            ep.peak_value, a.value)
        changed = {"last_at": max(ep.last_at, a.timestamp), "count": count, "peak_value": peak,
                   "severity": a.severity if worse else ep.severity}
        updated = self._event(ep, ep.status, a.timestamp, **changed)
        self.open[ep.anomaly_type] = updated
        if worse or count % self.update_every == 0:
            return [*out, self._event(updated, "updated", a.timestamp)]
        return out

    def _close(self, ep: AnomalyEpisode, at: datetime) -> AnomalyEpisode:
        closed = self._event(ep, "closed", at)
        del self.open[ep.anomaly_type]
        self._state().last = closed
        return closed

    def on_time(self, now: datetime) -> list[AnomalyEpisode]:
        """Close the episodes whose last anomaly is more than ``gap`` before ``now``."""
        out = []
        for ep in list(self.open.values()):
            if now - ep.last_at > self.gap:
                out.append(self._close(ep, now))
        return out
