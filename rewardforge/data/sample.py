"""The bundled samples: Anthropic HH-RLHF harmless pairs (MIT licence, see sample_data/LICENSE),
and generated step-labelled arithmetic problems for process reward models (sample_data/prm/)."""

from __future__ import annotations

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"


def sample_paths() -> tuple[str, str]:
    """(train file, dev file) of the bundled HH-RLHF harmless sample: 1,600 and 300 pairs."""
    return str(SAMPLE_DIR / "train.jsonl"), str(SAMPLE_DIR / "dev.jsonl")


PRM_DIR = SAMPLE_DIR / "prm"
# How the bundled step-labelled data is made (`data/arithmetic_steps.py`): problems, solutions
# per problem and seed of each split. A test regenerates the files and compares.
PRM_SPLITS = {"train": (750, 4, 1), "eval": (100, 4, 2)}


def prm_sample_paths() -> tuple[str, str, str]:
    """(train, eval, eval in ProcessBench's format) of the bundled arithmetic step data:
    3,000 and 400 solutions, about half with a wrong step."""
    return (
        str(PRM_DIR / "train.jsonl"),
        str(PRM_DIR / "eval.jsonl"),
        str(PRM_DIR / "eval_processbench.jsonl"),
    )
