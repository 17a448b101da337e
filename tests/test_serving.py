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


def test_a_model_call_alone_gets_every_thread_and_one_under_a_crowd():
    import threading

    from sketchface.serving import RequestLoad

    load, seen, errors = RequestLoad(alone=2, shared=1), {}, []

    def worker():  # a handler's own thread, as Gradio runs it: torch's thread count is set per calling thread
        try:
            with load.running():
                with load.threads() as n:
                    seen["alone"] = (n, torch.get_num_threads())
                seen["after"] = torch.get_num_threads()  # back to one: captions, a later request on this thread
                with load.running():  # a second request arrives while this one still runs
                    with load.threads() as n:
                        seen["crowd"] = (n, torch.get_num_threads())
            assert load.count == 0
        except AssertionError as err:
            errors.append(err)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert not errors and seen == {"alone": (2, 2), "after": 1, "crowd": (1, 1)}
    # a crowd whose requests happen to run one at a time still comes several a second: one thread each
    busy = RequestLoad(alone=2, shared=1, quiet=3, window=60)
    for _ in range(3):
        with busy.running():
            pass
    with busy.running():
        assert not busy.is_alone() and busy.count == 1
    calm = RequestLoad(alone=2, shared=1, quiet=3, window=0.0)  # the same requests, long enough ago
    for _ in range(4):
        with calm.running():
            pass
    with calm.running():
        assert calm.is_alone()
    assert len(calm._begun) <= 1  # only the window's starts are kept, model calls or not
    with pytest.raises(ValueError, match="at least 1"):
        load.configure(alone=0)


def test_alone_threads_flag(monkeypatch):
    assert app.parse_args([]).alone_threads == 0  # 0: every usable core
    assert app.parse_args(["--alone_threads", "1"]).alone_threads == 1
    monkeypatch.setenv("SKETCHFACE_ALONE_THREADS", "2")
    assert app.parse_args([]).alone_threads == 2
    for bad in ("-1", "all"):
        monkeypatch.setenv("SKETCHFACE_ALONE_THREADS", bad)
        with pytest.raises(SystemExit):
            app.parse_args([])


def test_the_app_counts_a_request_as_running_while_its_model_draws(app_registry, free_port, monkeypatch):
    from gradio_client import Client

    from sketchface.serving import LOAD

    counts = []
    threads = LOAD.threads

    def spy():
        counts.append(LOAD.count)
        return threads()

    monkeypatch.setattr(LOAD, "threads", spy)
    demo = app.build_demo(app_registry)
    demo.launch(
        server_name="127.0.0.1", server_port=free_port, prevent_thread_lock=True, quiet=True, **app.launch_kwargs()
    )
    try:
        unknown = ["?"] * 40  # every attribute radio left at "?" (unknown): the text says it all
        client = Client(f"http://127.0.0.1:{free_port}/", verbose=False)
        client.predict("a man with glasses", *unknown, None, 2, 0, False, api_name="/describe")
    finally:
        demo.close()
    assert counts and all(c == 1 for c in counts) and LOAD.count == 0
