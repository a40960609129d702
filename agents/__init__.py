"""Thin Faust agents: decode, call `detectors`, emit events. One agent per module."""
