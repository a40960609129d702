"""Streaming adapters: settings, the Faust app, the topic catalogue, simulator and replay."""
