import sys

from sketchface.training import cli_command


def test_cli_command_from_config(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["pytest"])  # not the script itself: the command is rebuilt from the config
    cmd = cli_command(
        "mvae",
        {"steps": 10, "sketch": False, "widths": [8, 16], "lr": 0.001, "resume": True},
        {"steps": 6000, "sketch": True, "widths": [32], "lr": 0.001, "resume": False},
        skip=("resume",),
    )
    assert cmd == "python train/mvae.py --steps 10 --no-sketch --widths 8 16"


def test_cli_command_quotes_the_running_script(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train/classifier.py", "--max_steps", "5"])
    assert cli_command("classifier", {"max_steps": 5}, {"max_steps": 1}) == "python train/classifier.py --max_steps 5"
