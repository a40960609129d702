"""The functional core: detectors and per-reading scoring steps. No I/O, no wall clock.

Imports only `schemas`, numpy, river and scikit-learn.
"""
