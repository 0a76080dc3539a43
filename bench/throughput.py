"""Training throughput: TRL's RewardTrainer against rewardforge on the same backbone and pairs.

    python bench/throughput.py                      # both rows, both trainers (~45 min, 2 cores)
    python bench/throughput.py --rows smollm2-135m  # one row
    python bench/throughput.py --limit 8            # a quick check: 8 training pairs per row
    python bench/throughput.py --rows minilm-l6 --seeds 42,43,44   # accuracy over seeds

Each (row, trainer) runs in its own subprocess, so that peak RSS is that run's own. Both
trainers get the same pairs, tokenized identically by rewardforge's scoring recipe (so TRL drops
nothing for length), the same pairs per optimizer step, learning rate and max length, fp32, no
gradient checkpointing, no dropout (both trainers' default), one epoch, the same seed. Tokens
fed counts every position given to the model, padding included. Achieved FLOP/s is
6 x non-embedding parameters x tokens fed / training time, shown as a fraction of a plain fp32
matmul's FLOP/s measured at the start of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "rewardforge" / "sample_data" / "train.jsonl"
DEV = ROOT / "rewardforge" / "sample_data" / "dev.jsonl"
LIMIT = int(os.environ.get("BENCH_LIMIT", "0")) or None
DEV_LIMIT = int(os.environ.get("BENCH_DEV_LIMIT", "0")) or None
ROWS = {
    "smollm2-135m": {"pairs": LIMIT or 48, "max_length": 1024, "batch_pairs": 8, "lr": 1e-5},
    "minilm-l6": {"pairs": LIMIT, "max_length": 512, "batch_pairs": 16, "lr": 5e-5},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated backbones")
    parser.add_argument("--trainers", default="trl,rewardforge")
    parser.add_argument("--limit", type=int, help="train on at most this many pairs per row")
    parser.add_argument("--dev-limit", type=int, help="evaluate on the first N dev pairs only")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds, one run each")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--worker", nargs=3, metavar=("ROW", "TRAINER", "SEED"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.limit:
        os.environ["BENCH_LIMIT"] = str(args.limit)
    if args.dev_limit:
        os.environ["BENCH_DEV_LIMIT"] = str(args.dev_limit)
    if args.worker:
        row, trainer, seed = args.worker
        run = run_trl if trainer == "trl" else run_rewardforge
        result = run(row, int(seed))
        result["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print("RESULT " + json.dumps(result))
        return
    matmul = matmul_flops()
    print(f"plain fp32 matmul: {matmul / 1e9:.1f} GFLOP/s")
    results = []
    for row in args.rows.split(","):
        for seed in args.seeds.split(","):
            for trainer in args.trainers.split(","):
                print(f"running {trainer} on {row}, seed {seed} ...", flush=True)
                result = run_worker(row, trainer, seed)
                results.append({"row": row, "trainer": trainer, "seed": int(seed), **result})
                if args.json:  # after every run, so that a long benchmark keeps what it has
                    args.json.write_text(json.dumps({"matmul_flops": matmul, "results": results}))
    print_table(results, matmul)


def run_worker(row: str, trainer: str, seed: str) -> dict:
    command = [sys.executable, __file__, "--worker", row, trainer, seed]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{trainer} on {row} failed:\n{done.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def matmul_flops(size: int = 2048, repeats: int = 10) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def tokenized_pairs(row: str, path: Path, limit: int | None):
    """(model, tokenizer, encoder, rows) with rewardforge's recipe; rows are pair rows."""
    from rewardforge.data import load_preferences
    from rewardforge.models import load_reward_backbone
    from rewardforge.recipe import RecipeEncoder, ScoringRecipe

    model, tokenizer, is_encoder = load_reward_backbone(row)
    recipe = ScoringRecipe.for_model(tokenizer, is_encoder, ROWS[row]["max_length"])
    encoder = RecipeEncoder(recipe, tokenizer)
    examples = load_preferences(path).examples[:limit]
    return model, tokenizer, [encoder.encode_example(e).as_row() for e in examples]


def non_embedding_parameters(model) -> int:
    embeddings = sum(p.numel() for p in model.get_input_embeddings().parameters())
    return sum(p.numel() for p in model.parameters()) - embeddings


def run_trl(row: str, seed: int) -> dict:
    import datasets
    from trl import RewardConfig, RewardTrainer

    settings = ROWS[row]
    model, tokenizer, train_rows = tokenized_pairs(row, TRAIN, settings["pairs"])
    _, _, dev_rows = tokenized_pairs(row, DEV, DEV_LIMIT)

    def as_trl(rows):
        return datasets.Dataset.from_list(
            [{"chosen_ids": r["input_ids"][0], "rejected_ids": r["input_ids"][1]} for r in rows]
        )

    tokens = {"fed": 0}

    def count(module, args, kwargs):
        if module.training:
            tokens["fed"] += kwargs["input_ids"].numel()

    model.register_forward_pre_hook(count, with_kwargs=True)
    with tempfile.TemporaryDirectory() as output:
        config = RewardConfig(
            output_dir=output,
            per_device_train_batch_size=settings["batch_pairs"],
            per_device_eval_batch_size=settings["batch_pairs"],
            learning_rate=settings["lr"],
            max_length=settings["max_length"],
            num_train_epochs=1,
            gradient_checkpointing=False,
            bf16=False,
            report_to="none",
            save_strategy="no",
            logging_steps=10,
            seed=seed,
        )
        trainer = RewardTrainer(
            model=model,
            args=config,
            train_dataset=as_trl(train_rows),
            eval_dataset=as_trl(dev_rows),
            processing_class=tokenizer,
        )
        fit = trainer.train()
        accuracy = trainer.evaluate()["eval_accuracy"]
    runtime = fit.metrics["train_runtime"]
    return summary(len(train_rows), tokens["fed"], runtime, accuracy, model)


def run_rewardforge(row: str, seed: int) -> dict:
    from rewardforge import TrainConfig, train
    from rewardforge.models import load_reward_backbone

    settings = ROWS[row]
    with tempfile.TemporaryDirectory() as output:
        data = first_lines(TRAIN, settings["pairs"], Path(output) / "train.jsonl")
        dev = first_lines(DEV, DEV_LIMIT, Path(output) / "dev.jsonl")
        config = TrainConfig(
            data=[str(data)],
            eval_data=[str(dev)],
            model=row,
            output=str(Path(output) / "rm"),
            batch_pairs=settings["batch_pairs"],
            lr=settings["lr"],
            max_length=settings["max_length"],
            warmup_ratio=0.0,
            save_steps=10**6,
            seed=seed,
        )
        metrics = train(config).metrics
    model = load_reward_backbone(row)[0]
    return summary(
        metrics["train_pairs"],
        metrics["train_tokens"],
        metrics["train_runtime_s"],
        metrics["eval_accuracy"],
        model,
    )


def first_lines(source: Path, count: int | None, target: Path) -> Path:
    """`source` itself, or its first `count` lines copied to `target`."""
    if count is None:
        return source
    lines = source.read_text(encoding="utf-8").splitlines()[:count]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def summary(pairs: int, tokens: int, runtime: float, accuracy: float, model) -> dict:
    return {
        "pairs": pairs,
        "tokens_fed": tokens,
        "train_runtime_s": runtime,
        "pairs_per_s": pairs / runtime,
        "flops": 6 * non_embedding_parameters(model) * tokens / runtime,
        "eval_accuracy": accuracy,
    }


def print_table(results: list[dict], matmul: float) -> None:
    header = (
        f"{'backbone':<14}{'trainer':<13}{'seed':>5}{'pairs':>6}{'pairs/s':>9}{'speedup':>9}"
        f"{'tokens fed':>12}{'peak RSS':>10}{'dev acc':>9}{'FLOP/s':>9}"
    )
    print(header)
    print("-" * len(header))
    baseline = {(r["row"], r["seed"]): r["pairs_per_s"] for r in results if r["trainer"] == "trl"}
    for r in results:
        trl = baseline.get((r["row"], r["seed"]), float("nan"))
        print(
            f"{r['row']:<14}{r['trainer']:<13}{r['seed']:>5}{r['pairs']:>6}"
            f"{r['pairs_per_s']:>9.3f}{r['pairs_per_s'] / trl:>8.2f}x{r['tokens_fed']:>12,}"
            f"{r['peak_rss_gib']:>8.2f}Gi{r['eval_accuracy']:>9.3f}{r['flops'] / matmul:>8.0%}"
        )
    print("FLOP/s: 6 x non-embedding params x tokens fed / time, as a share of the matmul rate.")
    runs: dict[tuple[str, str], list[float]] = {}
    for r in results:
        runs.setdefault((r["row"], r["trainer"]), []).append(r["eval_accuracy"])
    for (row, trainer), accuracies in runs.items():
        if len(accuracies) > 1:
            mean = sum(accuracies) / len(accuracies)
            print(f"{row} {trainer}: mean dev accuracy {mean:.3f} over {len(accuracies)} seeds")


if __name__ == "__main__":
    main()
