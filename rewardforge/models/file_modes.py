"""Saved weights readable as the other files of a model folder are.

safetensors writes its files with mode 0600 whatever the umask, so a model saved by one user
could not be served by another on a shared machine, while its config and tokenizer could."""

from __future__ import annotations

import os
from pathlib import Path


def share_weights_like_config(folder: str | Path) -> None:
    """Give every `*.safetensors` file under `folder` the permission bits of its config.json
    (or, without one, those the umask gives a new file)."""
    folder = Path(folder)
    config = folder / "config.json"
    if config.is_file():
        mode = config.stat().st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    for weights in folder.rglob("*.safetensors"):
        os.chmod(weights, mode)
