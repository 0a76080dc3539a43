"""Scoring a corpus in one process against Ray with 1 and 2 workers, on this machine.

    .venv/bin/python bench/ray_scoring.py [--rows 2000] [--reward-model runs/rm]

The corpus is HH-RLHF-style rows (`prompt` + `response`: each bundled training pair's first turn
with its chosen and its rejected answer, repeated to `--rows`), scored by the README's default
reward model (`rewardforge train --output runs/rm`, MiniLM; trained first if missing) with
`rewardforge score`, then `score --engine ray --workers 1` and `--workers 2` (shards of
`--shard-rows`, a local Ray started by the command). Each run is a fresh command; the RSS of its
whole process tree (Ray's workers included) is sampled every 0.2 s. Prints one Markdown row a run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from rewardforge.data.sample import sample_paths

COMMAND = str(Path(sys.executable).parent / "rewardforge")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--shard-rows", type=int, default=250)
    parser.add_argument("--reward-model", type=Path, default=Path("runs/rm"))
    parser.add_argument("--work-dir", type=Path, default=Path("runs/ray-bench"))
    args = parser.parse_args()
    work = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    if not args.reward_model.exists():
        subprocess.run([COMMAND, "train", "--output", str(args.reward_model)], check=True)
    corpus = write_corpus(work / "corpus.jsonl", args.rows)
    base = [COMMAND, "score", "--model", str(args.reward_model), "--input", str(corpus)]
    runs = {
        "one process (`score`)": [*base, "--output", str(work / "one.jsonl")],
        "Ray, 1 worker": [*base, "--engine", "ray", "--workers", "1"]
        + ["--shard-rows", str(args.shard_rows), "--output", str(work / "ray1")],
        "Ray, 2 workers": [*base, "--engine", "ray", "--workers", "2"]
        + ["--shard-rows", str(args.shard_rows), "--output", str(work / "ray2")],
    }
    print("| run | rows | seconds | rows/s | peak RSS, all processes | largest process |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, command in runs.items():
        for stale in (work / "ray1", work / "ray2"):
            shutil.rmtree(stale, ignore_errors=True)
        seconds, total, largest = measured(command)
        print(
            f"| {name} | {args.rows} | {seconds:.1f} | {args.rows / seconds:.1f} | "
            f"{total:.2f} GiB | {largest:.2f} GiB |",
            flush=True,
        )


def write_corpus(path: Path, rows: int) -> Path:
    pairs = [json.loads(line) for line in Path(sample_paths()[0]).read_text("utf-8").splitlines()]
    out = []
    while len(out) < rows:
        for pair in pairs:
            question, chosen = split(pair["chosen"])
            _, rejected = split(pair["rejected"])
            out += [
                {"prompt": question, "response": chosen},
                {"prompt": question, "response": rejected},
            ]
    path.write_text("".join(json.dumps(row) + "\n" for row in out[:rows]), "utf-8")
    return path


def split(transcript: str) -> tuple[str, str]:
    human = transcript.split("\n\nHuman: ", 1)[1]
    question, _, rest = human.partition("\n\nAssistant: ")
    return question.strip(), rest.split("\n\nHuman: ", 1)[0].strip()


def measured(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds; the peak of the summed RSS of the process tree, and of its largest process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    peaks = [0.0, 0.0]

    def sample() -> None:
        root = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                sizes = [p.memory_info().rss / 2**30 for p in tree]
            except psutil.Error:
                continue
            peaks[0], peaks[1] = max(peaks[0], sum(sizes)), max(peaks[1], max(sizes))
            time.sleep(0.2)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    if process.wait() != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    watcher.join()
    return time.perf_counter() - started, peaks[0], peaks[1]


if __name__ == "__main__":
    main()
