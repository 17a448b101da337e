"""Serving a crowd (docs/crowd.md): one thread per torch operation, describes in a concurrency group of their own
sized to the cores, a queue that holds a workshop's page loads."""

from __future__ import annotations

import pytest
import torch

import app
from sketchface.serving import limit_torch_threads


def test_limit_torch_threads():
    before = torch.get_num_threads()
    try:
        assert limit_torch_threads(1) == before
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError, match="at least 1"):
            limit_torch_threads(0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_main_runs_torch_on_one_thread_by_default(monkeypatch):
    assert app.parse_args([]).torch_threads == 1
    assert app.parse_args(["--torch_threads", "2"]).torch_threads == 2
    monkeypatch.setenv("SKETCHFACE_TORCH_THREADS", "3")
    assert app.parse_args([]).torch_threads == 3
    for bad in ("0", "many"):  # a plain usage error, not a traceback
        monkeypatch.setenv("SKETCHFACE_TORCH_THREADS", bad)
        with pytest.raises(SystemExit):
            app.parse_args([])


def test_describe_has_its_own_concurrency_group_and_the_queue_room_for_a_crowd(app_registry):
    demo = app.build_demo(app_registry)
    fns = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    describe = fns["describe"]
    assert describe.concurrency_id == "describe" and describe.concurrency_limit == app.DESCRIBE_CONCURRENCY >= 2
    # the heavy non-crowd events keep their own small group: a long Compare never holds a describe up
    assert {fns[n].concurrency_id for n in ("compare", "sketch", "more_like_this", "cross")} == {"gpu"}
    assert demo._queue.max_size == app.QUEUE_SIZE >= 2 * 50 + 50  # 50 visitors: two load events each, and a click
