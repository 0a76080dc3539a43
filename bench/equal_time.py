"""Equal time: TRL's RewardTrainer for one epoch, and rewardforge for as long, keeping its best.

    python bench/equal_time.py                          # MiniLM, bundled pairs, seeds 42,43,44
    python bench/equal_time.py --limit 800 --json equal_time.json

For each seed, TRL trains one epoch on MiniLM (as `bench/throughput.py` runs it: same pairs,
tokenization, learning rate, batch, seed and fp32). rewardforge then gets TRL's training time as
its budget: `--epochs 3 --load-best --eval-steps N` on the same pairs, stopped when the budget is
spent (its evaluations count against the budget; the state at the stop is evaluated too, so a
stop can overrun by one evaluation, reported). Both models are scored on the same dev pairs,
ties counting as wrong. Each run is its own subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput  # noqa: E402 (the TRL run and the data handling are throughput.py's)

ROW = "minilm-l6"
EPOCHS = 3  # rewardforge trained MiniLM about 3x faster than TRL (BENCHMARKS.md)
EVALUATIONS_PER_EPOCH = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--limit", type=int, help="train on the first N bundled pairs")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", nargs=2, metavar=("SEED", "BUDGET_S"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.limit:
        os.environ["BENCH_LIMIT"] = str(args.limit)
    if args.worker:
        seed, budget = args.worker
        print("RESULT " + json.dumps(run_rewardforge(int(seed), float(budget))))
        return
    os.environ["THP_MEM_ALLOC_ENABLE"] = "1"  # what the rewardforge CLI sets, for both
    results = []
    for seed in args.seeds.split(","):
        print(f"seed {seed}: TRL, one epoch ...", flush=True)
        trl = throughput.run_worker(ROW, "trl", seed, "hh")
        budget = trl["train_runtime_s"]
        print(f"seed {seed}: rewardforge, {budget:.0f} s ...", flush=True)
        rewardforge = rewardforge_worker(seed, budget)
        results.append({"seed": int(seed), "trl": trl, "rewardforge": rewardforge})
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    print_table(results)


def rewardforge_worker(seed: str, budget: float) -> dict:
    command = [sys.executable, __file__, "--worker", seed, str(budget)]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"rewardforge failed:\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def run_rewardforge(seed: int, budget: float) -> dict:
    from transformers import TrainerCallback

    from rewardforge import TrainConfig, train

    class TimeBudget(TrainerCallback):
        """Stop once the training time reaches the budget, evaluating that last state."""

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if time.perf_counter() - self.start >= budget:
                control.should_training_stop = True
                control.should_evaluate = control.should_save = True

    settings = throughput.ROWS[ROW]
    pairs = throughput.LIMIT or 1600
    steps_per_epoch = -(-pairs // settings["batch_pairs"])
    with tempfile.TemporaryDirectory() as work:
        target = Path(work) / "train.jsonl"
        train_file = throughput.first_lines(throughput.TRAIN, throughput.LIMIT, target)
        config = TrainConfig(
            data=[str(train_file)],
            eval_data=[str(throughput.DEV)],
            model=throughput.backbone(ROW),
            output=str(Path(work) / "rm"),
            batch_pairs=settings["batch_pairs"],
            lr=settings["lr"],
            max_length=settings["max_length"],
            warmup_ratio=0.0,
            epochs=EPOCHS,
            load_best=True,
            eval_steps=max(1, steps_per_epoch // EVALUATIONS_PER_EPOCH),
            seed=seed,
        )
        started = time.perf_counter()
        metrics = train(config, callbacks=[TimeBudget()]).metrics
        wall = time.perf_counter() - started
        steps = metrics["last_step"]
    return {
        "budget_s": budget,
        "train_runtime_s": metrics["train_runtime_s"],
        "wall_s": wall,
        "epochs": steps / steps_per_epoch,
        "best_step": metrics["best_step"],
        "best_epoch": metrics["best_step"] / steps_per_epoch,
        "last_step": steps,
        "eval_accuracy": metrics["eval_accuracy"],
    }


def print_table(results: list[dict]) -> None:
    print(
        f"{'seed':>5}{'TRL time':>10}{'TRL acc':>9}{'rf time':>9}{'rf epochs':>11}"
        f"{'best epoch':>12}{'rf acc':>8}"
    )
    for r in results:
        trl, rf = r["trl"], r["rewardforge"]
        print(
            f"{r['seed']:>5}{trl['train_runtime_s']:>9.0f}s{trl['eval_accuracy']:>9.3f}"
            f"{rf['train_runtime_s']:>8.0f}s{rf['epochs']:>11.2f}{rf['best_epoch']:>12.2f}"
            f"{rf['eval_accuracy']:>8.3f}"
        )
    for name in ("trl", "rewardforge"):
        accuracies = [r[name]["eval_accuracy"] for r in results]
        spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        print(
            f"{name}: dev accuracy mean {statistics.fmean(accuracies):.3f}, standard deviation "
            f"{spread:.3f}, range {min(accuracies):.3f} to {max(accuracies):.3f}"
        )


if __name__ == "__main__":
    main()
