"""Backtests of the detectors on NAB, SKAB and the simulator, and their reports (I/O shells
around the pure scoring in `detectors`)."""
