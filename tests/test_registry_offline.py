"""HF_HUB_OFFLINE=1: a Hub id named with --mvae etc. loads from the local cache, or is unavailable with a plain
reason, and the network is never touched (issue 22)."""

from __future__ import annotations

import socket

import pytest

from sketchface import registry as registry_mod
from sketchface.registry import Registry
from tests.helpers import tiny_mvae_config

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def no_network(monkeypatch):
    """Every way the registry could reach the Hub fails the test: socket connections, the reachability probe and
    a snapshot download that is not local-files-only."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError(f"network used while HF_HUB_OFFLINE=1: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    import huggingface_hub

    from sketchface import hub

    monkeypatch.setattr(hub, "hub_reachable", refuse)
    real_snapshot = huggingface_hub.snapshot_download

    def snapshot(repo_id, *args, local_files_only=False, **kwargs):
        if not local_files_only:
            refuse("snapshot_download", repo_id)
        return real_snapshot(repo_id, *args, local_files_only=True, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot)
    return calls


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache of our own, offline mode on."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_offline_hub_id_not_cached_is_unavailable_without_any_network_call(hub_cache, no_network):
    assert registry_mod.hub_offline()
    reg = Registry.discover({"mvae": ["nobody-sketchface-test/not-cached-model"]}, env={}, defaults=False).load()
    (entry,) = reg.entries
    assert entry.origin == "Hugging Face Hub" and entry.status == "unavailable" and not entry.ok
    assert "not in the local Hugging Face cache" in entry.reason and "HF_HUB_OFFLINE" in entry.reason
    assert "hf download nobody-sketchface-test/not-cached-model" in entry.reason
    assert no_network == []


def test_offline_hub_id_in_the_cache_loads_from_it(hub_cache, no_network):
    import torch

    from sketchface.models.mvae import MVAE

    repo = hub_cache / "models--nobody-sketchface-test--cached-mvae"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    torch.manual_seed(0)
    MVAE(tiny_mvae_config(32, widths=[4, 8, 8, 8], attr_hidden=16)).save_pretrained(repo / "snapshots" / COMMIT)
    reg = Registry.discover({"mvae": ["nobody-sketchface-test/cached-mvae"]}, env={}, defaults=False).load()
    (entry,) = reg.entries
    assert entry.ok, entry.reason
    assert entry.reason == "from the local Hugging Face cache" and entry.folder.endswith(COMMIT)
    assert no_network == []


def test_online_a_missing_hub_id_still_asks_the_hub(monkeypatch, hub_cache):
    """Without offline mode the registry does probe the Hub (here: answered "unreachable" at once)."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    from huggingface_hub import constants

    from sketchface import hub

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    probes = []
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout: probes.append(timeout) or (False, "test: no route"))
    assert not registry_mod.hub_offline()
    reg = Registry.discover({"mvae": ["nobody-sketchface-test/not-cached-model"]}, env={}, defaults=False).load()
    assert probes and "Hub is unreachable (test: no route)" in reg.entries[0].reason


@pytest.mark.parametrize(
    "text,ok",
    [
        ("timbrooks/instruct-pix2pix", True),
        ("owner/name.v2_b", True),
        ("instruct-pix2pix", False),  # no owner: a folder name, not a repo id
        ("a/b/c", False),
        ("./owner/name", False),
        ("/abs/path", False),
        ("~/x", False),
        ("owner/", False),
        ("-owner/name", False),
        ("", False),
    ],
)
def test_hub_repo_id_is_owner_slash_name(text, ok):
    from sketchface.pipelines.stylize import InstructPix2PixBackend

    assert registry_mod.is_hub_repo_id(text) is ok
    if text:  # the stylizer decides "local folder or Hub id" with the same rule
        assert InstructPix2PixBackend(model=text)._is_local() is (not ok)
