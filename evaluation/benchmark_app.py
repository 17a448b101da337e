"""Start the app on localhost, then measure start-up time, resident memory and the describe round trip.

    python -m evaluation.benchmark_app                          # starter checkpoints (or SKETCHFACE_* variables)
    python -m evaluation.benchmark_app --runs 50 -- --mvae PATH  # flags after -- go to app.py

Start-up: from launching ``python app.py`` to the first HTTP 200 from the server. Memory: VmRSS (and the peak,
VmHWM) of the app process from /proc. Round trip: ``gradio_client.Client.predict`` of the ``/describe``
endpoint (8 candidates by default) through the queue, three ways:

* ``Client(url)``, the default: the 8 PNGs are downloaded one by one, and each download opens a new ``httpx``
  connection whose TLS set-up reloads the CA bundle (httpx issue #3627), even for ``http://`` on localhost;
* ``Client(url, ssl_verify=ssl.create_default_context())``: the same downloads, certificates still verified,
  with one TLS context loaded once and shared (``ssl_verify`` is handed to httpx's ``verify=``);
* ``Client(url, download_files=False)``: the client gets the 8 PNG URLs and fetches nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import statistics
import subprocess
import sys
import time
from pathlib import Path

if not __package__:  # run as a file, not with python -m: the repository root on sys.path, as -m has it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evaluation.app_process import free_port, memory_mb, wait_http  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
N_ATTRIBUTES = 40


def _percentiles(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p90_ms": round(ms[min(len(ms) - 1, int(0.9 * len(ms)))], 1),
        "min_ms": round(ms[0], 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--candidates", type=int, default=8)
    p.add_argument("--description", default="Chubby young man with glasses and bushy eyebrows")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("app_args", nargs="*", help="arguments for app.py (after --)")
    args = p.parse_args()

    from gradio_client import Client

    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "GRADIO_ANALYTICS_ENABLED": "False"}
    cmd = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port), *args.app_args]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url, proc, timeout=120)
        startup_s = time.perf_counter() - t0
        mem_start = memory_mb(proc.pid)

        client = Client(url, verbose=False)
        unknown = ["?"] * N_ATTRIBUTES
        n = args.candidates

        def describe(c: Client, seed: int) -> float:
            t = time.perf_counter()
            gallery = c.predict(args.description, *unknown, None, n, seed, True, api_name="/describe")[0]
            dt = (time.perf_counter() - t) * 1000
            if len(gallery) != n:
                raise RuntimeError(f"expected {n} candidates, got {len(gallery)}")
            return dt

        describe(client, 0)  # warm-up (first call builds caches)
        with_download = [describe(client, i) for i in range(args.runs)]
        shared = Client(url, verbose=False, ssl_verify=ssl.create_default_context())
        describe(shared, 0)
        shared_tls = [describe(shared, i) for i in range(args.runs)]
        light = Client(url, verbose=False, download_files=False)
        describe(light, 0)
        without_download = [describe(light, i) for i in range(args.runs)]
        mem_end = memory_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            log, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            log, _ = proc.communicate()

    models = [line for line in log.splitlines() if line.startswith("[sketchface]")]
    result = {
        "startup_s": round(startup_s, 2),
        "rss_mb_after_startup": round(mem_start.get("VmRSS", float("nan")), 1),
        "rss_mb_after_benchmark": round(mem_end.get("VmRSS", float("nan")), 1),
        "peak_rss_mb": round(mem_end.get("VmHWM", float("nan")), 1),
        "describe_candidates": n,
        "runs": args.runs,
        "describe_roundtrip_with_png_download": _percentiles(with_download),
        "describe_roundtrip_with_png_download_shared_tls_context": _percentiles(shared_tls),
        "describe_roundtrip_without_download": _percentiles(without_download),
        "cpu_count": os.cpu_count(),
        "models": models,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
