"""Datasets: CelebA readers (``celeba``), procedural faces (``procedural``) and sketches (``sketch``)."""
