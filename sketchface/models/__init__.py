"""Models: one top-level model per module; shared blocks in ``layers``."""
