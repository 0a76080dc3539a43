"""The bundled sample: Anthropic HH-RLHF harmless pairs (MIT licence, see sample_data/LICENSE)."""

from __future__ import annotations

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"


def sample_paths() -> tuple[str, str]:
    """(train file, dev file) of the bundled HH-RLHF harmless sample: 1,600 and 300 pairs."""
    return str(SAMPLE_DIR / "train.jsonl"), str(SAMPLE_DIR / "dev.jsonl")
