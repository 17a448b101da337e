"""SketchFace's evaluation and benchmark scripts: held-out evaluations of the models, speed and memory benchmarks,
the app's load and limit measurements. Each module is a script, run from the repository root as
``python -m evaluation.<name>`` (``python evaluation/<name>.py`` works too); the index is ``evaluation/README.md``.
Training scripts are under ``train/``; the library they measure is ``sketchface``."""
