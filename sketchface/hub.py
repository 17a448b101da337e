"""Asking whether the Hugging Face Hub can be reached, without hanging on a slow network."""

from __future__ import annotations

import os
import socket
import threading
from urllib.parse import urlparse


def hub_reachable(timeout: float = 2.0) -> tuple[bool, str]:
    """Whether a TCP connection to the Hub endpoint opens within ``timeout`` seconds (DNS included).

    Runs in a daemon thread so that a slow DNS lookup cannot hold the caller longer than ``timeout``.
    """
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    # Behind a proxy the Hub is reached through it: probe the proxy instead.
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy") or os.environ.get("ALL_PROXY")
    url = urlparse(proxy if proxy and endpoint.startswith("https") else endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)
    result: list[tuple[bool, str]] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append((True, f"{host}:{port} reachable"))
        except OSError as err:
            result.append((False, f"cannot connect to {host}:{port} ({err.__class__.__name__}: {err})"))

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if not result:
        return False, f"no answer from {host}:{port} within {timeout:g} s"
    return result[0]
