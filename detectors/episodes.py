"""Alert episodes: repeated anomalies of one machine and type, close in time, are one
episode (opened, updated, closed), so that a fault does not flood the dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta

from detectors.state import EpisodesState
from schemas.events import SEVERITY_RANK, AnomalyDetected, AnomalyEpisode, stable_event_id


class EpisodeTracker:
    """One machine's open episodes, one per anomaly type.

    An anomaly opens an episode unless one of its type is open; it joins the open one if it
    comes within ``gap`` of that episode's last anomaly. An episode is closed by the first
    reading (any) later than ``gap`` after its last anomaly. "updated" goes out when the
    severity rises and every ``update_every`` anomalies, not for each one.

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

    def __init__(self, gap: timedelta = timedelta(minutes=15), update_every: int = 10) -> None:
        self.gap = gap
        self.update_every = update_every

    _s: EpisodesState | None = None  # built on first use

    def _state(self) -> EpisodesState:
        s = self._s
        if s is None:
            s = self._s = EpisodesState()
        return s

    @property
    def open(self) -> dict[str, AnomalyEpisode]:
        """The open episode of each anomaly type."""
        return self._state().open

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
        ep = self.open.get(a.anomaly_type)
        if ep is None or a.timestamp - ep.last_at > self.gap:
            out = [] if ep is None else [self._event(ep, "closed", ep.last_at)]
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
        changed = {"last_at": a.timestamp, "count": count, "peak_value": peak,
                   "severity": a.severity if worse else ep.severity}
        updated = self._event(ep, ep.status, a.timestamp, **changed)
        self.open[a.anomaly_type] = updated
        if worse or count % self.update_every == 0:
            return [self._event(updated, "updated", a.timestamp)]
        return []

    def on_time(self, now: datetime) -> list[AnomalyEpisode]:
        """Close the episodes whose last anomaly is more than ``gap`` before ``now``."""
        out = []
        for kind, ep in list(self.open.items()):
            if now - ep.last_at > self.gap:
                out.append(self._event(ep, "closed", now))
                del self.open[kind]
        return out
