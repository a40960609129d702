"""The one detector interface every online detector follows (River's shape)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

Features = Mapping[str, float]

#: The online detectors the scoring step knows (`detectors.scoring.make_detector`), default
#: first; here so that the command line can list them without importing River.
DETECTORS = ("residual", "hst", "zscore")

#: Largest magnitude of any value the core takes in (a reading's value, a regressor): its
#: square (1e300) is still a float, and so is any sum of such values or squares a model or an
#: hour will ever hold. The shell's plausibility gates (`schemas.plausibility`) are far tighter.
MAX_VALUE = 1e150


class AnomalyDetector(ABC):
    """An online anomaly detector.

    ``score_one(x)`` returns a score in [0, 1], high = anomalous, and does not change state;
    ``learn_one(x)`` updates state and returns None. Callers score first, then learn, and do
    not learn (or learn with a small weight, where the detector takes one) from points they
    flag. ``__init__`` only stores parameters; state is built
    lazily. The detectors a machine's scorer runs also give their state as data
    (``state()``, ``load(state)``: `detectors.state`), which goes to a Faust changelog
    without pickle.
    """

    @abstractmethod
    def learn_one(self, x: Features) -> None:
        """Update the detector with one observation."""

    @abstractmethod
    def score_one(self, x: Features) -> float:
        """Anomaly score of one observation in [0, 1]; high = anomalous."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({params})"
