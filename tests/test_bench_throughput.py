"""`bench/throughput.py` at toy size: the GPU benchmark's code path (random-weight Llama shape,
both trainers, HH and long-conversation data), kept working for the day a GPU is lent."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "throughput.py"


def test_the_llama_shape_rows_run_both_trainers_on_both_data_kinds(tmp_path):
    command = [sys.executable, str(SCRIPT), "--rows", "llama-tiny", "--data", "hh,long"]
    command += ["--limit", "8", "--dev-limit", "6", "--json", str(tmp_path / "bench.json")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "bench.json").read_text())["results"]
    runs = {(result["data"], result["trainer"]): result for result in results}
    assert set(runs) == {
        (data, trainer) for data in ("hh", "long") for trainer in ("trl", "rewardforge")
    }
    for (_, trainer), result in runs.items():
        assert result["pairs"] == 8 and 0 <= result["eval_accuracy"] <= 1
        # TRL pads every pair's two rows; rewardforge packs them and feeds the prompt once.
        if trainer == "trl":
            assert result["tokens_fed"] >= result["real_tokens"]
        else:
            assert result["tokens_fed"] < result["real_tokens"]
    assert runs["long", "trl"]["real_tokens"] > runs["hh", "trl"]["real_tokens"]


def test_an_unknown_row_is_refused_with_the_choices():
    command = [sys.executable, str(SCRIPT), "--rows", "llama-2b"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "unknown rows ['llama-2b']" in done.stderr and "llama-1b" in done.stderr
