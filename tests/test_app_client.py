"""Every endpoint through gradio_client against the app served on localhost (started once for the module)."""

from __future__ import annotations

import os

import pytest
from PIL import Image, ImageDraw

import app
from sketchface.attributes import ATTRIBUTES
from sketchface.export import AI_LABEL, UPLOAD_LABEL, read_metadata
from sketchface.pipelines.attribute_to_face import DESCRIPTION_WEIGHT

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

UNK = ["?"] * len(ATTRIBUTES)


@pytest.fixture(scope="module")
def server(app_registry, free_port):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the InstructPix2Pix probe answers at once
    demo = app.build_demo(app_registry)
    demo.launch(
        server_name="127.0.0.1", server_port=free_port, prevent_thread_lock=True, quiet=True, **app.launch_kwargs()
    )
    yield f"http://127.0.0.1:{free_port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    sketch = Image.new("RGB", (200, 200), "white")
    draw = ImageDraw.Draw(sketch)
    draw.ellipse((40, 30, 160, 180), outline="black", width=4)
    draw.line((80, 80, 95, 80), fill="black", width=4)
    draw.line((110, 80, 125, 80), fill="black", width=4)
    draw.arc((75, 120, 125, 150), 20, 160, fill="black", width=4)
    sketch.save(d / "sketch.png")
    Image.new("RGB", (200, 200), "white").save(d / "blank.png")
    from sketchface.data.procedural import render

    Image.fromarray(render({"Male": True, "Eyeglasses": False}, seed=3, size=128).image).save(d / "face.png")
    (d / "notes.txt").write_text("this is not an image")
    (d / "fake.png").write_bytes(b"not really a png at all")
    Image.new("L", (8000, 6000), 255).save(d / "huge.png")  # 48 MP, small file: over the pixel limit
    return d


def _gallery_paths(gallery):
    return [item["image"]["path"] if isinstance(item.get("image"), dict) else item["image"] for item in gallery]


def test_parse_and_preset(client):
    out = client.predict("bald old man with a goatee and a zorblax", api_name="/parse")
    values = dict(zip(ATTRIBUTES, out[:-1]))
    assert values["Bald"] == "yes" and values["Goatee"] == "yes" and values["Young"] == "no"
    assert "zorblax" in out[-1]
    out = client.predict("Criminal 3", api_name="/preset")
    assert "glasses" in out[0] and dict(zip(ATTRIBUTES, out[1:-1]))["Eyeglasses"] == "yes"
    with pytest.raises(AppError, match="must be one of: Criminal 1, Criminal 2, Criminal 3"):
        client.predict("Criminal 9", api_name="/preset")


def test_describe_variations_cross_history_send(client):
    with pytest.raises(AppError, match="Nothing to go on"):
        client.predict("", *UNK, None, 8, 0, True, api_name="/describe")
    gallery, status, a, b, selection, download = client.predict(
        "young woman with black hair", *UNK, None, 8, 1, True, api_name="/describe"
    )
    paths = _gallery_paths(gallery)
    assert len(paths) == 8 and "Round 1" in status and "8 candidates" in status
    meta = read_metadata(paths[0])
    assert meta["label"] == AI_LABEL and meta["seed"] == 1 and meta["attributes"]["Black_Hair"] is True
    assert meta["description_weight"] == DESCRIPTION_WEIGHT  # the slider's default when the API omits it
    with pytest.raises(AppError, match="Pick a candidate"):
        client.predict(None, 0.3, 4, 0, None, True, api_name="/more_like_this")
    gallery, status, *_ = client.predict(2, 0.3, 4, 0, None, True, api_name="/more_like_this")
    assert len(_gallery_paths(gallery)) == 4 and "Round 2" in status
    with pytest.raises(AppError, match="two different picks"):
        client.predict(1, None, 2, 0, None, True, api_name="/cross")
    gallery, status, *_ = client.predict(1, 2, 2, 0, None, True, api_name="/cross")
    assert len(_gallery_paths(gallery)) == 2 and "Round 3" in status
    gallery, status, *_ = client.predict(1, api_name="/restore_round")
    assert len(_gallery_paths(gallery)) == 8 and "round 1" in status
    with pytest.raises(AppError, match="no round 7"):
        client.predict(7, api_name="/restore_round")
    upload, before = client.predict(3, api_name="/send_to_stylize")
    assert read_metadata(upload)["candidate"] == 3
    assert Image.open(before).width == Image.open(before).height
    # the face this server sent keeps its label through Stylize (the session remembers what it sent)
    after, caption, _download = client.predict(
        handle_file(upload), "add glasses", "latent", None, 1.0, True, 20, 7.5, 1.5, 0, False, api_name="/stylize"
    )
    assert read_metadata(after)["label"] == AI_LABEL and "Labelled" not in caption
    # "Advanced": how strictly to follow the description, 1 = the plain product of experts
    plain = client.predict("young woman with black hair", *UNK, None, 2, 1, True, 1.0, api_name="/describe")[0]
    assert read_metadata(_gallery_paths(plain)[0])["description_weight"] == 1.0


def test_sketch_endpoints_and_bad_inputs(client, files):
    def canvas(path):
        f = handle_file(str(path))
        return {"background": f, "layers": [], "composite": f}

    preview, status = client.predict(canvas(files / "sketch.png"), None, "sketch", api_name="/sketch_preview")
    assert Image.open(preview).size == (256, 256) and "drawn sketch" in status
    preview, status = client.predict(None, handle_file(str(files / "face.png")), "photo", api_name="/sketch_preview")
    assert "photo" in status
    with pytest.raises(AppError, match="blank"):
        client.predict(canvas(files / "blank.png"), None, "sketch", api_name="/sketch_preview")
    with pytest.raises(AppError, match="canvas is blank and nothing was uploaded"):
        client.predict(None, None, "sketch", api_name="/sketch_preview")
    with pytest.raises(AppError, match="Invalid file type|not an image"):
        client.predict(None, handle_file(str(files / "notes.txt")), "sketch", api_name="/sketch_preview")
    with pytest.raises(AppError, match="not an image that can be read"):
        client.predict(None, handle_file(str(files / "fake.png")), "sketch", api_name="/sketch_preview")
    with pytest.raises(AppError, match="megapixel"):
        client.predict(None, handle_file(str(files / "huge.png")), "sketch", api_name="/sketch_preview")

    gallery, preview, status, pick = client.predict(
        None, handle_file(str(files / "sketch.png")), "sketch", None, "", 3, 0, 0.5, False, api_name="/sketch"
    )
    paths = _gallery_paths(gallery)
    assert len(paths) == 3 and read_metadata(paths[0])["action"] == "sketch" and "3 faces" in status
    # The MVAE's sketch expert with words: sketch ⊗ attributes in the product of experts.
    gallery, preview, status, pick = client.predict(
        canvas(files / "sketch.png"),
        None,
        "sketch",
        "mvae · tiny-mvae",
        "gray hair",
        2,
        0,
        0.5,
        False,
        api_name="/sketch",
    )
    assert len(_gallery_paths(gallery)) == 2 and "mvae" in status
    meta = read_metadata(_gallery_paths(gallery)[0])
    assert meta["attributes"]["Gray_Hair"] is True and meta["description_weight"] == DESCRIPTION_WEIGHT
    # how much the words count against the drawing: 1 = the plain product of experts, other faces
    args = [canvas(files / "sketch.png"), None, "sketch", "mvae · tiny-mvae", "gray hair", 2, 0, 0.5, False]
    plain, _, status, _ = client.predict(*args, 1.0, api_name="/sketch")
    assert read_metadata(_gallery_paths(plain)[0])["description_weight"] == 1.0
    upload, _before = client.predict(2, api_name="/sketch_send_to_stylize")
    assert read_metadata(upload)["candidate"] == 2
    with pytest.raises(AppError, match="no face #5"):
        client.predict(5, api_name="/sketch_send_to_stylize")
    # The tiny pSp has no fitted attribute directions: the faces come from the drawing, and the status says the words
    # were not used (never a silent drop)
    _, _, status, _ = client.predict(
        canvas(files / "sketch.png"), None, "sketch", "psp · tiny-psp", "bald", 1, 0, 0.5, False, api_name="/sketch"
    )
    assert "Not used: bald" in status and "does not take words" in status


def test_stylize_and_bad_inputs(client, files):
    face = handle_file(str(files / "face.png"))

    def stylize(image, text, backend="latent", keep_details=True, steps=20):
        # inputs: image, instruction, backend, editor, strength, keep details, steps, guidance, image guidance,
        # seed, caption strip
        return client.predict(
            image, text, backend, None, 1.0, keep_details, steps, 7.5, 1.5, 0, True, api_name="/stylize"
        )

    before = client.predict(face, api_name="/stylize_load")
    assert Image.open(before).size == (128, 128)
    after, caption, download = stylize(face, "add glasses and make the hair brown")
    meta = read_metadata(after)
    assert meta["instruction"] == "add glasses and make the hair brown" and meta["changes"]["Eyeglasses"] is True
    # an uploaded face may be a real person's: its result says so (issue 22), in the file and on the page
    assert meta["label"] == UPLOAD_LABEL and "Latent editor" in caption and "derived from an uploaded image" in caption
    assert meta["params"]["keep_details"] is True
    plain, _caption, _download = stylize(face, "add glasses", keep_details=False)
    assert read_metadata(plain)["params"]["keep_details"] is False
    with pytest.raises(AppError, match="limit is 500"):
        stylize(face, "x" * 501)
    with pytest.raises(AppError, match="type an instruction"):
        stylize(face, "  ")
    with pytest.raises(AppError, match="upload a face image first|Please upload"):
        stylize(None, "add glasses")
    with pytest.raises(AppError, match="not an image that can be read"):
        stylize(handle_file(str(files / "fake.png")), "add glasses")
    with pytest.raises(AppError, match="megapixel"):
        client.predict(handle_file(str(files / "huge.png")), api_name="/stylize_load")
    with pytest.raises(AppError, match="Could not use|only changes the 40"):
        stylize(face, "make it look like a painting")
    with pytest.raises(AppError, match="[Uu]navailable|offline|cache|reach"):
        stylize(face, "make it a painting", backend="instruct-pix2pix", steps=2)
    md = client.predict(api_name="/backends")
    assert "latent" in md and "instruct-pix2pix" in md and "unavailable" in md
    # an editor that cannot edit an uploaded face is refused (the handler says why), never silently replaced
    refused = "tiny-psp (cannot edit an uploaded face|is not in the list of choices)|must be one of: mvae · tiny-mvae"
    with pytest.raises(AppError, match=refused):
        client.predict(
            face, "add glasses", "latent", "psp · tiny-psp", 1.0, True, 20, 7.5, 1.5, 0, True, api_name="/stylize"
        )


def test_compare_metrics_models(client, tmp_path):
    grid, status = client.predict("bald man with a beard", 0, True, api_name="/compare")
    meta = read_metadata(grid)
    assert [c["name"] for c in meta["columns"]][:3] == ["Criminal 1", "Criminal 2", "Criminal 3"]
    assert len(meta["columns"]) == 4 and "1 model(s) × 4" in status
    # the tiny model is an MVAE: the grid records the weight it drew with (the slider's default when omitted)
    assert meta["description_weight"] == DESCRIPTION_WEIGHT
    assert meta["description_weight_models"] == ["mvae · tiny-mvae"]
    assert f"description weight {DESCRIPTION_WEIGHT:g}" in status
    plain, status = client.predict("", 0, True, 1.0, 2, api_name="/compare")
    assert read_metadata(plain)["candidates"] == 2 and "× 2 candidates" in status
    assert read_metadata(plain)["description_weight"] == 1.0 and "description weight 1 (mvae · tiny-mvae)" in status
    with pytest.raises(AppError, match="less than minimum value 0.5"):  # Gradio checks the slider's range
        client.predict("", 0, True, 0.0, api_name="/compare")
    with pytest.raises(AppError, match="understood"):
        client.predict("qwertyuiop", 0, True, api_name="/compare")
    # results sets by name only (tests/test_app_security.py tries paths)
    assert "From `eval-procedural/results.md`" in client.predict("eval-procedural", api_name="/metrics")
    with pytest.raises(AppError, match="must be one of: edits-mvae, eval-procedural"):
        client.predict(str(tmp_path), api_name="/metrics")
    table = client.predict(api_name="/models")
    assert "tiny-psp" in table and "tiny-mvae" in table and "classifier" in table
