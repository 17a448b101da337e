"""Serving many requests at once from one process: how many threads each torch operation gets.

A web app answers many visitors from one process. torch parallelises each operation over all cores by default;
under a crowd several requests run at once, each on its own thread, and the server's own threads (HTTP, JSON, PNG
encoding) want the cores too. Every operation's OpenMP team then waits on threads the OS has descheduled: on the
project's 2-core machine, with the cores busy, an 8-candidate describe took ~200 ms that way instead of ~16 ms on
one thread, and the app served 9 describes a second with the CPU a quarter idle (docs/crowd.md).
:func:`limit_torch_threads` gives each operation one thread; the concurrent requests are the parallelism.

No gradio here (``sketchface`` never imports it); ``app.py`` calls this at start-up.
"""

from __future__ import annotations


def limit_torch_threads(n: int = 1) -> int:
    """Run each torch operation on at most ``n`` threads (intra-op, process-wide); returns the number before."""
    import torch

    if int(n) < 1:
        raise ValueError(f"the number of torch threads must be at least 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    return before


__all__ = ["limit_torch_threads"]
