"""Faust tables: materialised views of topics, kept in changelogs."""
