"""The ``enms`` command line: the composition root of the worker, the API and the tools."""
