"""SmolLM2-135M as a verdict judge against SmolLM2-135M as a scalar reward model, same pairs and
the same wall time.

    python bench/judge_vs_scalar.py --budget 240 --train-pairs 400 --dev-pairs 100 \
        --seeds 42,43,44 --json judge_vs_scalar.json

For each seed, a scalar reward model (`rewardforge train`) trains on the first N bundled HH-RLHF
harmless pairs until the budget is spent, then a verdict judge (`train --kind generative`,
through TRL's SFT: four questions a pair) trains on the same pairs for the same time; both at
learning rate 2e-5, 8 pairs (scalar) or 8 questions (judge) a step, fp32, max length 512. Both
are evaluated on the first M dev pairs: the scalar model's accuracy; the judge's pointwise
accuracy, pairwise accuracy (both orders averaged) and position bias. Then the judge's scoring
throughput: the dev pairs asked in both orders, read together with the question before the
first answer fed once (as `Judge.judge_pairs` does), against each order read alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from transformers import TrainerCallback

from rewardforge import TrainConfig, evaluate, train, train_judge
from rewardforge.data.sample import sample_paths
from rewardforge.recipe.encoder import EncodedGroup
from rewardforge.scoring.judge import Judge
from rewardforge.scoring.reward_model import RewardModel


class TimeBudget(TrainerCallback):
    """Stop training once `seconds` have passed since it began."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if time.perf_counter() - self.start >= self.seconds:
            control.should_training_stop = True


def first_lines(source: str, count: int, target: Path) -> Path:
    lines = Path(source).read_text(encoding="utf-8").splitlines(True)[:count]
    target.write_text("".join(lines), encoding="utf-8")
    return target


def run_seed(seed: int, args: argparse.Namespace, work: Path) -> dict:
    train_path, dev_path = sample_paths()
    data = first_lines(train_path, args.train_pairs, work / "train.jsonl")
    dev = first_lines(dev_path, args.dev_pairs, work / "dev.jsonl")
    common = dict(
        data=[str(data)],
        model="smollm2-135m",
        epochs=100.0,  # the budget stops it
        batch_pairs=8,
        lr=2e-5,
        max_length=512,
        seed=seed,
        mixed_precision="no",
        logging_steps=1000,
    )
    started = time.perf_counter()
    scalar = train(
        TrainConfig(**common, output=str(work / f"scalar-{seed}")), [TimeBudget(args.budget)]
    )
    scalar_s = time.perf_counter() - started
    started = time.perf_counter()
    judge_run = train_judge(
        TrainConfig(**common, output=str(work / f"judge-{seed}"), kind="generative"),
        callbacks=[TimeBudget(args.budget)],
    )
    judge_s = time.perf_counter() - started
    scalar_eval = evaluate(scalar.output_dir, str(dev), progress=False)
    judge_eval = evaluate(judge_run.output_dir, str(dev), progress=False)
    return {
        "seed": seed,
        "scalar": {
            "seconds": scalar_s,
            "steps": scalar.measured.last_step,
            "pairs_compared": scalar.measured.compared,
            "accuracy": scalar_eval["accuracy"],
        },
        "judge": {
            "seconds": judge_s,
            "steps": judge_run.metrics["steps"],
            "pointwise_accuracy": judge_eval["accuracy"],
            **judge_eval["judge"],
        },
        "throughput": judge_throughput(judge_run.output_dir, dev),
    }


def judge_throughput(folder: Path, dev: Path) -> dict:
    """Pairs a second on the first 50 dev pairs, both orders: read together (the question
    shared) and each order alone."""
    from rewardforge.data import load_preferences

    judge = Judge(RewardModel.load(folder))
    examples = load_preferences(str(dev)).examples[:50]
    prompts = [e.prompt for e in examples]
    better, worse = [e.responses[0] for e in examples], [e.responses[-1] for e in examples]
    started = time.perf_counter()
    judge.judge_pairs(prompts, better, worse)
    together = time.perf_counter() - started
    encoder, model = judge.reward_model.encoder, judge.reward_model
    rows = [
        EncodedGroup([encoder.encode_pair(p, a, b)]).as_row()
        for p, x, y in zip(prompts, better, worse)
        for a, b in ((x, y), (y, x))
    ]
    started = time.perf_counter()
    model.plan.score(judge.pairwise_forward, rows, model.max_tokens_per_batch, progress=False)
    alone = time.perf_counter() - started
    return {
        "pairs": len(examples),
        "together_pairs_s": len(examples) / together,
        "alone_pairs_s": len(examples) / alone,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=240.0, help="training seconds, each")
    parser.add_argument("--train-pairs", type=int, default=400)
    parser.add_argument("--dev-pairs", type=int, default=100)
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as work:
        for seed in map(int, args.seeds.split(",")):
            results.append(run_seed(seed, args, Path(work)))
            print(json.dumps(results[-1]), flush=True)
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))
    for key in ("accuracy",):
        print(f"scalar {key}: " + ", ".join(f"{r['scalar'][key]:.3f}" for r in results))
    for key in ("pointwise_accuracy", "pairwise_accuracy", "position_bias"):
        values = [r["judge"][key] for r in results]
        print(
            f"judge {key}: {statistics.mean(values):.3f} ({', '.join(f'{v:.3f}' for v in values)})"
        )


if __name__ == "__main__":
    main()
