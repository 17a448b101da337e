"""evaluation/load_test.py, briefly: 3 clients for 3 s against the app on the tiny test models, and its caps.

The 50-client, 60-s measurement of docs/crowd.md is not part of the default suite (it takes minutes and both cores).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

import app
from evaluation import load_test

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def server(app_registry):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app.build_demo(app_registry)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.launch_kwargs())
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_three_clients_three_seconds(server):
    report = load_test.run(server, clients=3, duration=3, candidates=2, processes=1, server_pid=os.getpid())
    assert report["errors"] == 0, report["error_messages"]
    assert report["requests"] >= 3 and report["requests_per_s"] > 0
    assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert report["server_cpu_cores"] > 0 and report["client_cpu_cores"] > 0
    assert report["clients"] == 3 and report["endpoint"] == "/describe" and report["download_files"] is True


def test_think_time_spaces_a_clients_requests(server):
    report = load_test.run(server, clients=2, duration=3, candidates=1, processes=1, think=2.0)
    assert report["errors"] == 0 and report["think_s"] == 2.0
    assert 2 <= report["requests"] <= 6  # each client: one at once, then one every 1-3 s


def test_errors_are_counted_not_fatal(server):
    """A request the app refuses counts as an error, and the run goes on to report it."""
    report = load_test.run(server, clients=2, duration=2, candidates=0, processes=1)
    assert report["requests"] == 0 and report["errors"] >= 2
    assert list(report["error_messages"]) == ["AppError: Value 0 is less than minimum value 1."]


def test_bounds(server):
    with pytest.raises(ValueError, match="max_clients"):
        load_test.run(server, clients=65, duration=1)
    with pytest.raises(ValueError, match="at most"):
        load_test.run(server, clients=1, duration=load_test.MAX_DURATION_S + 1)
    with pytest.raises(SystemExit):
        load_test.main(["--url", server, "--clients", "200", "--max_clients", "100"])


def test_percentiles_and_summary():
    assert load_test.percentile([5, 1, 3, 2, 4], 50) == 3
    assert load_test.percentile(list(range(1, 101)), 95) == 95
    assert load_test.percentile([7.0], 99) == 7.0
    s = load_test.summarize([100.0, 200.0, 300.0, 400.0], ["X: a", "X: a", "Y: b"], window_s=2, completed_in_window=3)
    assert s["requests"] == 4 and s["requests_per_s"] == 1.5 and s["errors"] == 3
    assert s["error_messages"] == {"X: a": 2, "Y: b": 1} and s["max_ms"] == 400.0
