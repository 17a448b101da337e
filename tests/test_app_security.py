"""Issue 22, "Security and resource limits": every defect through gradio_client against the app served on localhost
(one server for the module, its log captured): no file outside the allow-list can be read, no request below the
40-megapixel cap costs more than ~300 MB or a few seconds, Gradio's preprocessing errors and user text reach the
browser in plain, escaped words without server paths, and the log has one line per user error."""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

import app
from sketchface.attributes import ATTRIBUTES
from sketchface.export import read_metadata

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

UNK = ["?"] * len(ATTRIBUTES)
RESULTS = Path(app.__file__).resolve().parent / "docs" / "results"
SHIPPED = sorted(p.name for p in RESULTS.iterdir() if p.is_dir())
#: What must never appear in a message: a server path, Gradio's internals, a traceback, raw markup.
LEAKS = re.compile(r"/(work|tmp|home|root|etc|proc|usr)/|gradio/|Could not preprocess|Traceback|Errno|<script|<img")


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` × ``height`` 1-bit pixels: a few bytes of header (a decompression bomb's)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def extra_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evals") / "my-eval"
    folder.mkdir()
    (folder / "results.md").write_text("| model | MSE |\n|---|---|\n| mvae | 0.0123 |\n")
    return folder


@pytest.fixture(scope="module")
def server(app_registry, extra_results):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    demo = app.build_demo(app_registry, results=[str(extra_results)])
    with socket.socket() as s:  # a port of its own: tests/test_app_client.py's server may be up too
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app.launch_kwargs())
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server[1], verbose=False)


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    """Files that are not usable images, each as a browser could send it."""
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.png").write_bytes(b"")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><script>alert(1)</script></svg>'
    (d / "drawing.svg").write_bytes(svg)
    (d / "svg-named.png").write_bytes(svg)
    buf = d / "whole.png"
    img = Image.new("RGB", (300, 300), "white")
    ImageDraw.Draw(img).ellipse((40, 30, 260, 280), outline="black", width=5)
    img.save(buf)
    data = buf.read_bytes()
    (d / "truncated.png").write_bytes(data[: len(data) // 2])
    (d / "bomb.png").write_bytes(_png_header(20_000, 20_000))  # 400 MP: Pillow's own bomb error
    (d / "over-limit.png").write_bytes(_png_header(8_000, 6_000))  # 48 MP: over our 40 MP limit
    (d / "eps.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    return d


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """The issue's inputs: a 6300×6300 1-bit PNG (a few KB) and a ~39.5-megapixel JPEG."""
    from sketchface.data.procedural import render

    d = tmp_path_factory.mktemp("big")
    bits = Image.new("1", (6300, 6300), 1)
    ImageDraw.Draw(bits).ellipse((1500, 1000, 4800, 5300), outline=0, width=12)
    bits.save(d / "bits.png", optimize=True)
    face = Image.fromarray(render({"Male": True}, seed=5, size=256).image).resize((4600, 4600))
    photo = Image.new("RGB", (7690, 5136), (128, 136, 150))
    photo.paste(face, (1545, 268))
    photo.save(d / "photo.jpg", quality=80)
    return d


def _clean(message: str, *raw: str) -> None:
    """A message fit for the browser: plain, escaped, no server path, none of the raw input echoed."""
    assert not LEAKS.search(message), message
    for text in raw:
        assert text not in message, message
    assert len(message) < 1200, message


def _canvas(path) -> dict:
    f = handle_file(str(path))
    return {"background": f, "layers": [], "composite": f}


# ---------------------------------------------------------------------------------------------------------------
# Compare: results only from the allow-list, by name


def test_metrics_reads_only_named_results_sets(client, server, extra_results):
    demo, _ = server
    names = list(demo.handlers.results)
    assert names[0] == "my-eval" and set(SHIPPED) <= set(names)  # flag first, then every shipped folder
    text = client.predict("my-eval", api_name="/metrics")
    assert "0.0123" in text and text.startswith("From `my-eval/results.md`")
    for name in names:  # no rendered set shows where it lives on the server
        shown = client.predict(name, api_name="/metrics")
        assert shown.startswith(f"From `{name}/") and not re.search(r"/(work|tmp|home|root)/", shown), shown[:200]
        assert str(RESULTS.parent.parent) not in shown and str(extra_results) not in shown
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").is_file() else "\0"
    attempts = [
        "/etc/hostname",
        "/proc/self/environ",
        "app.py",
        "../app.py",
        "../../../../etc/passwd",
        "docs/results/eval-procedural",
        str(RESULTS / "eval-procedural"),
        str(extra_results),
        "eval-procedural/../../app.py",
        "x" * 4600,
        "<script>alert(1)</script>",
    ]
    for attempt in attempts:
        with pytest.raises(AppError) as err:
            client.predict(attempt, api_name="/metrics")
        message = str(err.value.message if hasattr(err.value, "message") else err.value)
        assert "must be one of: my-eval, " in message and "eval-procedural" in message, message
        _clean(message, attempt[:50], hostname)
        assert "environ" not in message and "SKETCHFACE" not in message


def test_metrics_handler_refuses_paths_without_echo(app_registry):
    h = app.Handlers(app_registry, results=[])
    assert h.default_results() == "eval-procedural"  # the shipped set, found wherever the app is started from
    shown = h.metrics(None)
    assert shown.startswith("From `eval-procedural/results.md`") and "Attribute → face" in shown
    for attempt in ("/etc/hostname", "../app.py", "app.py", "a" * 4600):
        with pytest.raises(app.gr.Error) as err:
            h.metrics(attempt)
        assert attempt not in err.value.message and "Choose one of: edits-mvae, eval-procedural" in err.value.message


def test_results_flag_repeats_and_env_still_works(monkeypatch, tmp_path, extra_results, app_registry):
    other = tmp_path / "second"
    other.mkdir()
    (other / "results.json").write_text('{"fidelity": 0.5}')
    args = app.parse_args(["--results", str(extra_results), "--results", str(other)])
    assert args.results == [str(extra_results), str(other)]
    h = app.Handlers(app_registry, results=args.results)
    assert list(h.results)[:2] == ["my-eval", "second"] and h.default_results() == "my-eval"
    assert '"fidelity": 0.5' in h.metrics("second")
    monkeypatch.setenv("SKETCHFACE_RESULTS", f"{other},{tmp_path / 'missing'}")
    h = app.Handlers(app_registry)
    assert list(h.results)[0] == "second" and "missing" not in h.results  # a bad entry is logged, not fatal


# ---------------------------------------------------------------------------------------------------------------
# Gradio's preprocessing errors and bad files: plain words, no paths


@pytest.mark.parametrize(
    "name, expected",
    [
        ("empty.png", "empty file"),
        ("svg-named.png", "not a PNG, JPEG, WebP"),
        ("drawing.svg", "not a PNG, JPEG, WebP"),
        ("truncated.png", "damaged or incomplete"),
        ("bomb.png", "too large to decode safely"),
        ("over-limit.png", "megapixel"),
        ("eps.png", "not a PNG, JPEG, WebP"),  # Pillow would run Ghostscript on an EPS
    ],
)
def test_bad_files_on_the_canvas_and_uploads_get_plain_errors(client, bad, name, expected):
    calls = {
        "canvas": lambda f: client.predict(_canvas(f), None, "sketch", api_name="/sketch_preview"),
        "canvas to /sketch": lambda f: client.predict(
            _canvas(f), None, "sketch", None, "", 1, 0, 0.5, False, api_name="/sketch"
        ),
        "upload": lambda f: client.predict(None, handle_file(str(f)), "photo", api_name="/sketch_preview"),
        "stylize": lambda f: client.predict(handle_file(str(f)), api_name="/stylize_load"),
    }
    for where, call in calls.items():
        if name.endswith(".svg") and where in ("upload", "stylize"):
            expected_here = "Invalid file type"  # the upload box takes image files only
        else:
            expected_here = expected
        with pytest.raises(AppError) as err:
            call(bad / name)
        message = err.value.message
        assert expected_here in message, (where, message)
        _clean(message, name)


def test_canvas_without_a_composite_is_flattened_from_its_parts(client, bad):
    value = {"background": handle_file(str(bad / "whole.png")), "layers": [], "composite": None}
    preview, status = client.predict(value, None, "sketch", api_name="/sketch_preview")
    assert Image.open(preview).size == (256, 256) and "drawn sketch" in status


def test_wrong_kinds_of_input_are_named_not_dumped(client):
    with pytest.raises(AppError) as err:  # a number box sent a script
        client.predict("young man", *UNK, None, 2, "<script>alert(1)</script>", True, api_name="/describe")
    assert "The input 'Seed' could not be read" in err.value.message
    _clean(err.value.message)
    with pytest.raises(AppError) as err:  # a radio sent a value outside its choices
        client.predict("<script>alert(1)</script>", api_name="/preset")
    assert "must be one of: Criminal 1, Criminal 2, Criminal 3" in err.value.message
    _clean(err.value.message)
    with pytest.raises(AppError) as err:  # a canvas sent text
        client.predict("not a drawing", None, "sketch", api_name="/sketch_preview")
    assert "could not be read" in err.value.message
    _clean(err.value.message, "not a drawing")


# ---------------------------------------------------------------------------------------------------------------
# user text is escaped wherever it is echoed


def test_user_text_is_escaped_in_errors_and_markdown(client, tmp_path):
    script = "<script>alert(1)</script>"
    with pytest.raises(AppError) as err:
        client.predict(f"{script} glorbfest", 0, True, api_name="/compare")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in err.value.message and "was understood" in err.value.message
    _clean(err.value.message)
    long_line = "bald " + "<b>x</b>" * 600 + " qwertyuiop"  # 4,800 characters: echoed short
    with pytest.raises(AppError) as err:
        client.predict(long_line, 0, True, api_name="/compare")
    assert len(err.value.message) < 300
    radios_md = client.predict(f"{script} man with a <b>beard</b>, no beard", api_name="/parse")[-1]
    assert "<" not in radios_md.replace("`", "")
    Image.new("RGB", (64, 64), (120, 100, 90)).save(tmp_path / "face.png")
    args = ("latent", None, 1.0, True, 20, 7.5, 1.5, 0, True)
    _after, caption, _ = client.predict(
        handle_file(str(tmp_path / "face.png")), f"add glasses {script}", *args, api_name="/stylize"
    )
    assert "Latent editor" in caption and "<" not in caption
    with pytest.raises(AppError) as err:  # nothing usable: the words it could not use are listed, escaped
        client.predict(
            handle_file(str(tmp_path / "face.png")),
            f"{script} <img src=x onerror=alert(1)>",
            *args,
            api_name="/stylize",
        )
    assert "Could not use" in err.value.message
    _clean(err.value.message)


def test_markdown_and_error_escaping_helpers():
    assert app.md_text("<img src=x onerror=alert(1)> [link](http://x) *b*") == (
        "&lt;img src=x onerror=alert(1)&gt; \\[link\\](http://x) \\*b\\*"
    )
    assert app.md_text("x" * 5000, limit=50).endswith("…") and len(app.md_text("x" * 5000, limit=50)) == 50
    msg = app.public_message("Could not read /tmp/gradio/abc/x.png or /work/main/app.py: <b>")
    assert msg == "Could not read [path] or [path]: &lt;b&gt;"
    assert app.public_message("see `hf download timbrooks/instruct-pix2pix` at https://huggingface.co/a/b") == (
        "see `hf download timbrooks/instruct-pix2pix` at https://huggingface.co/a/b"
    )


# ---------------------------------------------------------------------------------------------------------------
# memory and time below the 40 MP cap


def _costly(call) -> tuple[object, float, float]:
    """(result, seconds, peak resident MB over the start) of ``call()`` in this process (the server runs here)."""
    refs = Path(f"/proc/{os.getpid()}/clear_refs")

    def rss(key: str) -> float:
        for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")

    try:
        refs.write_text("5")  # peak := now
        base = rss("VmRSS")
    except OSError:
        base = float("nan")
    t0 = time.perf_counter()
    result = call()
    return result, time.perf_counter() - t0, rss("VmHWM") - base


def test_big_images_cost_what_small_ones_do(client, big):
    bits, photo = handle_file(str(big / "bits.png")), handle_file(str(big / "photo.jpg"))
    # 46 s and 4.7 GB before: the 1-bit PNG as a photo was sketched at 6300 px
    (preview, status), seconds, mb = _costly(lambda: client.predict(None, bits, "photo", api_name="/sketch_preview"))
    assert Image.open(preview).size == (256, 256) and "photo" in status
    assert seconds < 10 and not mb > 300, (seconds, mb)
    # 32 s and 4.5 GB before: the 39.5 MP JPEG is decoded at a quarter of its size, then sketched at 1024 px
    out, seconds, mb = _costly(
        lambda: client.predict(None, photo, "photo", None, "", 2, 0, 0.5, False, api_name="/sketch")
    )
    assert Image.open(out[1]).size == (256, 256) and len(out[0]) == 2
    assert seconds < 10 and not mb > 300, (seconds, mb)
    # 6.6 GB and a 39.5 MP PNG before: the output is the model's size times the display enlargement (256 px)
    args = (photo, "add glasses", "latent", None, 1.0, True, 20, 7.5, 1.5, 0, False)
    (after, caption, download), seconds, mb = _costly(lambda: client.predict(*args, api_name="/stylize"))
    with Image.open(after) as img:
        assert max(img.size) == 256, img.size
    assert read_metadata(after)["params"]["size"] == [256, 171]
    assert seconds < 10 and not mb > 300, (seconds, mb)
    before, seconds, mb = _costly(lambda: client.predict(photo, api_name="/stylize_load"))
    assert max(Image.open(before).size) == app.STYLIZE_PREVIEW_SIDE and seconds < 5 and not mb > 300


def test_heavy_endpoints_have_concurrency_limits(server):
    demo, _ = server
    fns = {f.api_name: f for f in demo.fns.values() if f.api_name}
    for name in (
        "describe",
        "more_like_this",
        "cross",
        "sketch",
        "sketch_preview",
        "stylize",
        "stylize_load",
        "compare",
    ):
        limit = fns[name].concurrency_limit
        assert isinstance(limit, int) and 1 <= limit <= 2, (name, limit)


# ---------------------------------------------------------------------------------------------------------------
# the log: one line per user error, a traceback per real failure


def test_log_has_one_line_per_user_error_and_tracebacks_for_failures(client, app_registry, caplog, capfd, monkeypatch):
    caplog.set_level(logging.INFO, logger="sketchface.app")
    capfd.readouterr()
    with pytest.raises(AppError, match="was understood"):
        client.predict("qwertyuiop", 0, True, api_name="/compare")
    records = [r for r in caplog.records if r.name == "sketchface.app"]
    assert len(records) == 1 and records[0].levelno == logging.INFO and records[0].exc_info is None
    assert records[0].getMessage().startswith("user error in /compare: Nothing in 'qwertyuiop'")
    assert "\n" not in records[0].getMessage() and "Traceback" not in capfd.readouterr().err

    entry = next(e for e in app_registry.loaded("attributes"))
    entry_caps = entry.pipeline.capabilities

    class Broken:  # a pipeline that declares what it takes, then fails
        capabilities = entry_caps

        def __call__(self, *args, **kwargs):
            raise RuntimeError("injected failure at /srv/secret/config.yaml")

    monkeypatch.setattr(entry, "pipeline", Broken())
    caplog.clear()
    with pytest.raises(AppError) as err:
        client.predict("young man", *UNK, entry.key, 2, 0, True, api_name="/describe")
    assert "Something went wrong on the server (RuntimeError)" in err.value.message
    _clean(err.value.message, "injected", "secret")
    (record,) = [r for r in caplog.records if r.name == "sketchface.app"]
    assert record.levelno == logging.ERROR and record.getMessage().startswith("failure in /describe: RuntimeError")
    assert "Traceback" in caplog.text and "injected failure" in caplog.text


# ---------------------------------------------------------------------------------------------------------------
# decoding: bounded before the pixels


def test_decode_image_shrinks_before_and_while_decoding(tmp_path, monkeypatch):
    from PIL import JpegImagePlugin

    from sketchface.export import save_png

    Image.new("RGB", (4000, 3000), (90, 120, 150)).save(tmp_path / "big.jpg", quality=70)
    drafts = []
    real_draft = JpegImagePlugin.JpegImageFile.draft
    monkeypatch.setattr(
        JpegImagePlugin.JpegImageFile,
        "draft",
        lambda self, mode, size: drafts.append(size) or real_draft(self, mode, size),
    )
    img = app.decode_image(str(tmp_path / "big.jpg"), max_side=1024)
    assert img.size == (1024, 768) and drafts == [(1024, 768)]  # libjpeg decoded it at half size (2000×1500)
    # a phone photo's EXIF orientation is applied (after shrinking)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.new("RGB", (400, 200), "white").save(tmp_path / "phone.jpg", exif=exif)
    assert app.decode_image(str(tmp_path / "phone.jpg"), max_side=100).size == (50, 100)
    # our own export's caption strip is cut before shrinking, so the face stays whole and square
    path = save_png(Image.new("RGB", (300, 300), "gray"), tmp_path, "face", {"seed": 1}, caption=True)
    assert Image.open(path).height > 300
    assert app.decode_image(str(path), max_side=128, uncaption=True).size == (128, 128)
