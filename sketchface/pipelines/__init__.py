"""Pipelines between models and UI: PIL in, PIL out, seeded."""
