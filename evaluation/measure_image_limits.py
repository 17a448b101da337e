"""Cost of one oversized-image request: peak memory and wall time of the app process, per endpoint.

    python -m evaluation.measure_image_limits                      # starter checkpoints, a free port
    python -m evaluation.measure_image_limits --port 7870 --json out.json -- --mvae PATH   # flags after -- go to app.py

Starts ``app.py`` on 127.0.0.1 and sends, one at a time through ``gradio_client``, the inputs of issue 22:

* a 12 KB 6300×6300 1-bit PNG to ``/sketch_preview`` as a photo;
* a ~39.5 MP JPEG to ``/sketch`` as a photo and to ``/stylize``;
* (for reference) a normal 1000-px photo to the same endpoints.

Before each request the app process's peak resident set (VmHWM) is reset through ``/proc/PID/clear_refs``, so the
peak reported is that request's own; "peak over baseline" subtracts the resident set just before it. Wall time is
the client's round trip (upload, queue, work, download); CPU time is the server process's user + system time.
Bounded: each request has a timeout (``--timeout``, default 120 s) and the app is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if not __package__:  # run as a file, not with python -m: the repository root on sys.path, as -m has it
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evaluation.app_process import cpu_seconds, free_port, memory_mb, wait_http  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # Linux >= 4.0: VmHWM := VmRSS


def make_inputs(folder: Path) -> dict[str, Path]:
    """The issue's inputs: a 1-bit 6300×6300 PNG, a ~39.5 MP JPEG, and a normal 1000-px photo."""
    from PIL import Image, ImageDraw

    from sketchface.data.procedural import render

    face = Image.fromarray(render({"Male": True}, seed=5, size=256).image)
    paths = {}
    bits = Image.new("1", (6300, 6300), 1)
    ImageDraw.Draw(bits).ellipse((1500, 1000, 4800, 5300), outline=0, width=12)
    paths["png_1bit_6300"] = folder / "bits-6300.png"
    bits.save(paths["png_1bit_6300"], optimize=True)
    big = Image.new("RGB", (7690, 5136), (128, 136, 150))  # 39.5 MP
    big.paste(face.resize((4600, 4600), Image.Resampling.BICUBIC), (1545, 268))
    paths["jpeg_39mp"] = folder / "photo-39mp.jpg"
    big.save(paths["jpeg_39mp"], quality=80)
    normal = Image.new("RGB", (1000, 1000), (128, 136, 150))
    normal.paste(face.resize((900, 900), Image.Resampling.BICUBIC), (50, 50))
    paths["jpeg_1000"] = folder / "photo-1000.jpg"
    normal.save(paths["jpeg_1000"], quality=90)
    rgba = Image.new("RGBA", (7300, 5460), (255, 255, 255, 0))  # 39.9 MP, transparent: a canvas-sized worst case
    ImageDraw.Draw(rgba).ellipse((2000, 500, 5300, 4900), outline=(0, 0, 0, 255), width=30)
    paths["png_rgba_40mp"] = folder / "drawing-40mp.png"
    rgba.save(paths["png_rgba_40mp"])
    return paths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per request")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--only", default=None, help="run only the cases whose name contains this text")
    p.add_argument("app_args", nargs="*", help="arguments for app.py (after --)")
    args = p.parse_args()

    from gradio_client import Client, handle_file
    from PIL import Image

    tmp = Path(tempfile.mkdtemp(prefix="sketchface-limits-"))
    inputs = make_inputs(tmp)
    sizes = {
        k: f"{Image.open(v).size[0]}×{Image.open(v).size[1]}, {v.stat().st_size / 1024:.0f} KB"
        for k, v in inputs.items()
    }
    port = args.port or free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    cmd = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port), *args.app_args]
    log_path = tmp / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    rows = []
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url, proc, timeout=180)
        client = Client(url, verbose=False)
        f = {k: handle_file(str(v)) for k, v in inputs.items()}
        stylize_args = ("add glasses", "latent", None, 1.0, True, 20, 7.5, 1.5, 0, True)
        cases = [
            ("/sketch_preview photo (normal 1000 px JPEG)", (None, f["jpeg_1000"], "photo"), "/sketch_preview"),
            ("/sketch_preview photo (1-bit 6300×6300 PNG)", (None, f["png_1bit_6300"], "photo"), "/sketch_preview"),
            (
                "/sketch photo (normal 1000 px JPEG)",
                (None, f["jpeg_1000"], "photo", None, "", 4, 0, 0.5, True),
                "/sketch",
            ),
            ("/sketch photo (39.5 MP JPEG)", (None, f["jpeg_39mp"], "photo", None, "", 4, 0, 0.5, True), "/sketch"),
            ("/stylize (normal 1000 px JPEG)", (f["jpeg_1000"], *stylize_args), "/stylize"),
            ("/stylize (39.5 MP JPEG)", (f["jpeg_39mp"], *stylize_args), "/stylize"),
            ("/stylize_load (39.5 MP JPEG)", (f["jpeg_39mp"],), "/stylize_load"),
            ("/sketch_preview sketch (39.9 MP RGBA PNG)", (None, f["png_rgba_40mp"], "sketch"), "/sketch_preview"),
            (
                "/sketch_preview canvas (39.9 MP RGBA PNG)",
                ({"background": f["png_rgba_40mp"], "layers": [], "composite": f["png_rgba_40mp"]}, None, "sketch"),
                "/sketch_preview",
            ),
            ("/stylize (39.9 MP RGBA PNG)", (f["png_rgba_40mp"], *stylize_args), "/stylize"),
        ]
        cases = [c for c in cases if args.only is None or args.only in c[0]]
        client.predict(None, f["jpeg_1000"], "photo", api_name="/sketch_preview")  # warm-up: detector, caches
        for name, inputs_, api in cases:
            time.sleep(1.0)  # let the previous request's memory settle
            base = memory_mb(proc.pid)["VmRSS"]
            _reset_peak(proc.pid)
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            result: list = []
            error: list = []

            def call(inputs_=inputs_, api=api, result=result, error=error) -> None:
                try:
                    result.append(client.predict(*inputs_, api_name=api))
                except Exception as err:  # noqa: BLE001 - reported in the table
                    error.append(f"{type(err).__name__}: {str(err)[:160]}")

            worker = threading.Thread(target=call, daemon=True)
            worker.start()
            worker.join(args.timeout)
            wall = time.perf_counter() - t0
            cpu = cpu_seconds(proc.pid) - cpu0
            mem = memory_mb(proc.pid)
            out_size = None
            if result:
                first = result[0][0] if isinstance(result[0], (list, tuple)) else result[0]
                if api == "/sketch":
                    first = result[0][1]  # the normalised sketch
                path = first.get("path") if isinstance(first, dict) else first
                try:
                    out_size = "×".join(map(str, Image.open(path).size))
                except Exception:  # noqa: BLE001 - not an image
                    out_size = None
            rows.append(
                {
                    "case": name,
                    "wall_s": round(wall, 2),
                    "server_cpu_s": round(cpu, 2),
                    "peak_rss_over_baseline_mb": round(mem["VmHWM"] - base, 1),
                    "peak_rss_mb": round(mem["VmHWM"], 1),
                    "rss_after_mb": round(mem["VmRSS"], 1),
                    "output": out_size,
                    "error": error[0] if error else (None if result else f"no answer within {args.timeout:g} s"),
                }
            )
            print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
            if not result and not error:
                break  # the server is still busy: later figures would be meaningless
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    report = {"inputs": sizes, "cpu_count": os.cpu_count(), "cases": rows}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
