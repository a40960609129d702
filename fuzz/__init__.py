"""Fuzzing the running service: generated bad records on Kafka, generated requests on the API.

``python -m fuzz`` (``make fuzz``) starts its own Kafka, Redis, worker and API, runs both
fuzzers, prints the figures and saves them in ``bench/results/``.
"""
