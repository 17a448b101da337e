"""Serving many requests at once from one process: how many threads each torch operation gets.

A web app answers many visitors from one process. torch parallelises each operation over all cores by default;
under a crowd several requests run at once, each on its own thread, and the server's own threads (HTTP, JSON, PNG
encoding) want the cores too. Every operation's OpenMP team then waits on threads the OS has descheduled: on the
project's 2-core machine, with the cores busy, an 8-candidate describe took ~200 ms that way instead of ~16 ms on
one thread, and the app served 9 describes a second with the CPU a quarter idle (docs/crowd.md).
:func:`limit_torch_threads` gives each operation one thread; the concurrent requests are the parallelism.

A visitor alone, though, leaves a core idle that way. :data:`LOAD` counts the requests running and those begun in
the last second, and lets a model call that runs alone, with the server quiet, use more threads
(:meth:`RequestLoad.threads`): under OpenMP ``torch.set_num_threads`` sets the team size of the calling thread, so
each request's worker thread chooses its own.

No gradio here (``sketchface`` never imports it); ``app.py`` calls this at start-up and around its handlers.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


def limit_torch_threads(n: int = 1) -> int:
    """Run each torch operation on at most ``n`` threads (intra-op, process-wide); returns the number before."""
    import torch

    if int(n) < 1:
        raise ValueError(f"the number of torch threads must be at least 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    return before


class RequestLoad:
    """How many requests are running, and so how many threads a model call may use.

    ``alone`` threads when its request is the only one running and at most ``quiet`` requests (itself included)
    began in the last ``window`` seconds, ``shared`` (1 by default) otherwise. A crowd's requests, even when they
    happen to run one at a time, come several a second and keep the server's own threads busy between them (files,
    queue messages), which a wider torch operation would then wait on. The count is kept by the server
    (:meth:`running`, around each handler); :meth:`threads` is entered around each model call on the handler's own
    thread and sets that thread's torch threads back to ``shared`` afterwards, so that nothing else on it
    (captions, a later request) runs wider than asked."""

    def __init__(self, alone: int = 1, shared: int = 1, *, quiet: int = 3, window: float = 1.0):
        self._lock = threading.Lock()
        self._running = 0
        self._begun: deque[float] = deque()
        self.quiet, self.window = int(quiet), float(window)
        self.configure(alone, shared)

    def configure(self, alone: int, shared: int = 1) -> None:
        if int(alone) < 1 or int(shared) < 1:
            raise ValueError(f"thread counts must be at least 1, got alone={alone}, shared={shared}")
        self.alone, self.shared = int(alone), int(shared)

    @property
    def count(self) -> int:
        return self._running

    def _forget_old(self, now: float) -> None:  # under the lock
        while self._begun and now - self._begun[0] > self.window:
            self._begun.popleft()

    @contextmanager
    def running(self) -> Iterator[None]:
        """Around one request's handler: it counts as running while inside."""
        with self._lock:
            now = time.monotonic()
            self._forget_old(now)  # the window's starts only: a long-lived server keeps no history
            self._running += 1
            self._begun.append(now)
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1

    def is_alone(self) -> bool:
        """At most one request running (a call outside any request counts too) and few begun in the last window."""
        with self._lock:
            self._forget_old(time.monotonic())
            return self._running <= 1 and len(self._begun) <= self.quiet

    @contextmanager
    def threads(self) -> Iterator[int]:
        """Around one model call, on the thread that makes it: ``alone`` torch threads when its request runs alone
        (:meth:`is_alone`), else ``shared``."""
        import torch

        n = self.alone if self.is_alone() else self.shared
        torch.set_num_threads(n)
        try:
            yield n
        finally:
            torch.set_num_threads(self.shared)


#: the app's load (``app.py`` configures it from --torch_threads and --alone_threads)
LOAD = RequestLoad()

__all__ = ["LOAD", "RequestLoad", "limit_torch_threads"]
