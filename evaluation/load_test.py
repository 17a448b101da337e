"""Bounded load test: N ``gradio_client`` clients call one endpoint of the app in a closed loop for a fixed time.

    python -m evaluation.load_test                                   # python app.py on a free port; 50 clients, 60 s
    python -m evaluation.load_test --clients 10 --duration 20 --endpoint parse
    python -m evaluation.load_test --think 5                          # each client waits ~5 s between clicks
    python -m evaluation.load_test --url http://127.0.0.1:7860/ --server_pid 1234    # an app that is already running
    python -m evaluation.load_test --json out.json -- --mvae PATH    # flags after -- go to app.py

Each client is one ``gradio_client.Client`` (its own session, like one visitor's browser tab) that sends a request,
waits for the answer (and, like a browser, downloads the images it names), and sends the next one at once (no
think time, the default: N clients keep up to N requests in the server's queue) or after ``--think`` seconds on
average (people looking at the faces before they click again). Client starts are spread over ``--ramp``
seconds (default 1). Every ``/describe`` draws a fresh random seed, so nothing can be served from a cache. The
clients run in ``--processes`` worker processes (threads inside), so that one client process's GIL does not
become the bottleneck being measured.

Reported: latency percentiles (p50, p95, p99, max) of every request sent in the window (those still running when
it ends are waited for, up to ``--timeout``), requests per second (completed in the window / window), the error
count with the first distinct messages, and CPU time over the window: the server process's (when its pid is known)
and the client processes' own, each as cores busy on average, besides the machine's share of busy CPU.

Bounded: at most ``--max_clients`` clients (default 64) and ``MAX_DURATION_S`` seconds; every request has a timeout;
worker processes and the app it started are stopped at the end, also on Ctrl+C or an error.

Clients' TLS context: ``gradio_client`` hands ``ssl_verify`` to ``httpx``, which builds a TLS context (loading the
CA bundle: ~20 ms of CPU) for every request and every downloaded file, even for ``http://``. A browser does not pay
that, and on a 2-core machine that client-side cost alone caps the load that 50 clients can send. By default each
worker process shares one ``ssl.SSLContext`` (certificates still verified); ``--tls per-request`` measures
``gradio_client``'s default instead.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if not __package__:  # run as a file, not with python -m: the repository root on sys.path, as -m has it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evaluation.app_process import cpu_seconds, free_port, wait_http  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
N_ATTRIBUTES = 40
MAX_DURATION_S = 600  # hard cap on the measured window, whatever --duration says
DESCRIPTION = "Chubby young man with glasses and bushy eyebrows"
ENDPOINTS = ("describe", "parse")


# ---------------------------------------------------------------------------------------------------------------
# one worker process: a few clients, each a thread in a closed loop


def _request_args(endpoint: str, candidates: int, rng: random.Random) -> tuple:
    if endpoint == "describe":
        return (DESCRIPTION, *["?"] * N_ATTRIBUTES, None, candidates, rng.randrange(2**31), True)
    return (DESCRIPTION,)


def _check(endpoint: str, out: Any, candidates: int) -> None:
    if endpoint == "describe":
        gallery = out[0]
        if len(gallery) != candidates:
            raise RuntimeError(f"expected {candidates} candidates, got {len(gallery)}")
    elif len(out) != N_ATTRIBUTES + 1:
        raise RuntimeError(f"expected {N_ATTRIBUTES + 1} outputs, got {len(out)}")


def _client_loop(cfg: dict, index: int, client: Any, start: float, end: float, out: list, errors: list) -> None:
    rng = random.Random(cfg["seed"] * 1000 + index)
    time.sleep(max(0.0, start - time.time()))
    first = True
    while time.time() < end:
        if cfg["think"] > 0 and not first:  # a person looks at the faces before the next click
            time.sleep(rng.uniform(0.5, 1.5) * cfg["think"])
            if time.time() >= end:
                break
        first = False
        t = time.perf_counter()
        try:
            job = client.submit(*_request_args(cfg["endpoint"], cfg["candidates"], rng), api_name=f"/{cfg['endpoint']}")
            result = job.result(timeout=cfg["timeout"])
            _check(cfg["endpoint"], result, cfg["candidates"])
            out.append((time.time(), (time.perf_counter() - t) * 1000))
        except Exception as err:  # noqa: BLE001 - every failure is counted and reported, none stops the test
            errors.append(f"{type(err).__name__}: {' '.join(str(err).split())[:200]}")


def worker_main(cfg: dict) -> None:
    """A worker process: build its clients, say READY, read the start time on stdin, run, print the results."""
    import ssl

    from gradio_client import Client

    verify: Any = ssl.create_default_context() if cfg["tls"] == "shared" else True
    clients = [
        Client(cfg["url"], verbose=False, ssl_verify=verify, download_files=cfg["download"]) for _ in cfg["indices"]
    ]
    print("READY", flush=True)
    start = float(sys.stdin.readline())
    end = start + cfg["duration"]
    cpu0 = cpu_seconds(os.getpid(), children=True)
    out: list = []
    errors: list = []
    threads = []
    for index, client in zip(cfg["indices"], clients):
        own_start = start + cfg["ramp"] * index / max(1, cfg["clients"])
        threads.append(
            threading.Thread(target=_client_loop, args=(cfg, index, client, own_start, end, out, errors), daemon=True)
        )
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=max(0.0, end - time.time()) + cfg["timeout"] + 5)
    cpu = (cpu_seconds(os.getpid(), children=True) or 0.0) - (cpu0 or 0.0)
    stuck = sum(th.is_alive() for th in threads)
    errors += [f"TimeoutError: a client was still waiting {cfg['timeout']} s after the end"] * stuck
    print("RESULT " + json.dumps({"latencies": out, "errors": errors, "cpu_s": cpu}), flush=True)
    os._exit(0)  # the clients' heartbeat threads would keep the process alive


# ---------------------------------------------------------------------------------------------------------------
# the driver


def _machine_busy() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    try:
        values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method (no interpolation: a value that was measured)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))  # ceil(q/100 · n)
    return ordered[rank - 1]


def summarize(
    latencies_ms: list[float], errors: list[str], window_s: float, completed_in_window: int | None = None
) -> dict:
    """The report's figures from the requests' latencies (ms), the error messages and the window's length.

    ``completed_in_window``: requests that ended inside the window (default: all), for the rate; the latencies
    include the requests still running at its end."""
    done = len(latencies_ms) if completed_in_window is None else completed_in_window
    distinct: dict[str, int] = {}
    for e in errors:
        distinct[e] = distinct.get(e, 0) + 1
    return {
        "requests": len(latencies_ms),
        "errors": len(errors),
        "error_messages": dict(sorted(distinct.items(), key=lambda kv: -kv[1])[:5]),
        "requests_per_s": round(done / window_s, 2) if window_s > 0 else float("nan"),
        "p50_ms": round(percentile(latencies_ms, 50), 1),
        "p95_ms": round(percentile(latencies_ms, 95), 1),
        "p99_ms": round(percentile(latencies_ms, 99), 1),
        "max_ms": round(max(latencies_ms), 1) if latencies_ms else float("nan"),
        "mean_ms": round(statistics.fmean(latencies_ms), 1) if latencies_ms else float("nan"),
    }


def run(
    url: str,
    *,
    clients: int,
    duration: float,
    endpoint: str = "describe",
    candidates: int = 8,
    processes: int | None = None,
    ramp: float = 1.0,
    timeout: float = 60.0,
    download: bool = True,
    tls: str = "shared",
    think: float = 0.0,
    server_pid: int | None = None,
    max_clients: int = 64,
    seed: int = 0,
) -> dict:
    """Run the load against ``url`` and return the figures (see :func:`summarize`, plus CPU and settings)."""
    if not 1 <= clients <= max_clients:
        raise ValueError(f"--clients must be 1 to --max_clients ({max_clients}), got {clients}")
    if not 0 < duration <= MAX_DURATION_S:
        raise ValueError(f"--duration must be more than 0 and at most {MAX_DURATION_S} s, got {duration}")
    if endpoint not in ENDPOINTS:
        raise ValueError(f"--endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
    processes = max(1, min(processes or -(-clients // 10), clients))
    indices = [list(range(clients))[i::processes] for i in range(processes)]
    base = {
        "url": url,
        "clients": clients,
        "duration": duration,
        "endpoint": endpoint,
        "candidates": candidates,
        "ramp": ramp,
        "timeout": timeout,
        "download": download,
        "tls": tls,
        "think": think,
        "seed": seed,
    }
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--_worker", json.dumps({**base, "indices": idx})],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for idx in indices
    ]
    try:
        for w in workers:  # every client built (a config fetch each) before the clock starts
            line = w.stdout.readline()
            if line.strip() != "READY":
                raise RuntimeError(f"a load worker did not start (exit code {w.poll()}): {line.strip()[:300]}")
        start = time.time() + 0.5
        cpu0 = cpu_seconds(server_pid, children=True) if server_pid else None
        busy0 = _machine_busy()
        for w in workers:
            w.stdin.write(f"{start}\n")
            w.stdin.flush()
        time.sleep(max(0.0, start + duration - time.time()))
        cpu1 = cpu_seconds(server_pid, children=True) if server_pid else None
        busy1 = _machine_busy()
        results = []
        for w in workers:
            out, _ = w.communicate(timeout=timeout + 30)
            line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise RuntimeError(f"a load worker gave no result (exit code {w.returncode})")
            results.append(json.loads(line[len("RESULT ") :]))
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    latencies = [ms for r in results for _t, ms in r["latencies"]]
    in_window = sum(1 for r in results for t, _ms in r["latencies"] if t <= start + duration)
    errors = [e for r in results for e in r["errors"]]
    report = summarize(latencies, errors, duration, in_window)
    if cpu0 is not None and cpu1 is not None:
        report["server_cpu_cores"] = round((cpu1 - cpu0) / duration, 2)
    report["client_cpu_cores"] = round(sum(r["cpu_s"] for r in results) / duration, 2)
    if busy0 and busy1 and busy1[1] > busy0[1]:
        report["machine_busy_share"] = round((busy1[0] - busy0[0]) / (busy1[1] - busy0[1]), 2)
    report.update(
        {
            "clients": clients,
            "duration_s": duration,
            "endpoint": f"/{endpoint}",
            "candidates": candidates if endpoint == "describe" else None,
            "download_files": download,
            "client_processes": processes,
            "tls_context": tls,
            "think_s": think,
            "cpu_count": os.cpu_count(),
        }
    )
    return report


def _print_report(r: dict) -> None:
    print(
        f"{r['clients']} clients × {r['duration_s']:g} s on {r['endpoint']}"
        + (f" (think {r['think_s']:g} s)" if r.get("think_s") else "")
        + f": {r['requests']} requests, "
        f"{r['requests_per_s']} requests/s, {r['errors']} errors\n"
        f"latency ms: p50 {r['p50_ms']}  p95 {r['p95_ms']}  p99 {r['p99_ms']}  max {r['max_ms']}  mean {r['mean_ms']}"
    )
    cpu = [f"{k.removesuffix('_cpu_cores')} {r[k]} cores" for k in ("server_cpu_cores", "client_cpu_cores") if k in r]
    if "machine_busy_share" in r:
        cpu.append(f"machine busy {r['machine_busy_share']:.0%} of {r['cpu_count']} CPUs")
    print("CPU: " + ", ".join(cpu))
    for message, count in r["error_messages"].items():
        print(f"  {count} × {message}")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    p.add_argument(
        "--duration", type=float, default=60.0, help=f"measured window in s (default 60, max {MAX_DURATION_S})"
    )
    p.add_argument("--max_clients", type=int, default=64, help="refuse more clients than this (default 64)")
    p.add_argument("--endpoint", choices=ENDPOINTS, default="describe")
    p.add_argument("--candidates", type=int, default=8, help="candidates per /describe (default 8)")
    p.add_argument("--url", default=None, help="an app already running; default: start app.py on --host/--port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="port for the app started here (default: a free one)")
    p.add_argument("--server_pid", type=int, default=None, help="with --url: the app's pid, for its CPU time")
    p.add_argument("--processes", type=int, default=None, help="client processes (default: one per 10 clients)")
    p.add_argument("--ramp", type=float, default=1.0, help="spread the clients' starts over this many s (default 1)")
    p.add_argument("--timeout", type=float, default=60.0, help="per-request timeout in s (default 60)")
    p.add_argument("--no_download", dest="download", action="store_false", help="do not download the images")
    p.add_argument("--tls", choices=("shared", "per-request"), default="shared", help="clients' TLS context")
    p.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean think time in s between a client's requests (uniform, 0.5-1.5 times it; default 0: each client "
        "clicks again as soon as its answer is in)",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the clients' random request seeds")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("app_args", nargs="*", help="arguments for app.py (after --)")
    args = p.parse_args(argv)
    if not 1 <= args.clients <= args.max_clients:
        p.error(f"--clients must be 1 to --max_clients ({args.max_clients})")
    if not 0 < args.duration <= MAX_DURATION_S:
        p.error(f"--duration must be more than 0 and at most {MAX_DURATION_S}")

    proc = None
    url, pid = args.url, args.server_pid
    log = tempfile.TemporaryFile("w+")  # the app's log: a pipe nobody reads would fill up and stall it
    try:
        if url is None:
            port = args.port or free_port()
            env = {
                **os.environ,
                "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
                "GRADIO_ANALYTICS_ENABLED": "False",
            }
            cmd = [sys.executable, str(ROOT / "app.py"), "--host", args.host, "--port", str(port), *args.app_args]
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
            url, pid = f"http://{args.host}:{port}/", proc.pid
            try:
                wait_http(url, proc, timeout=180)
            except (RuntimeError, TimeoutError):
                log.seek(0)
                print(log.read()[-3000:], file=sys.stderr)
                raise
        report = run(
            url,
            clients=args.clients,
            duration=args.duration,
            endpoint=args.endpoint,
            candidates=args.candidates,
            processes=args.processes,
            ramp=args.ramp,
            timeout=args.timeout,
            download=args.download,
            tls=args.tls,
            think=args.think,
            server_pid=pid,
            max_clients=args.max_clients,
            seed=args.seed,
        )
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    _print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--_worker":
        worker_main(json.loads(sys.argv[2]))
    else:
        main()
