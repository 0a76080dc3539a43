"""A process reward model on the bundled step-labelled arithmetic problems, on a CPU.

    .venv/bin/python examples/prm_demo.py [--work-dir runs/prm-demo] [--epochs 2]

Trains `minilm-l6` as a PRM on the 3,000 bundled training solutions (a reward at the end of
every step), keeps the epoch with the best step accuracy on the 400 held-out solutions, and
prints ProcessBench's metrics and best-of-N accuracy for each way of aggregating steps. The same
as `rewardforge train` then `rewardforge eval`, in two API calls.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rewardforge import TrainConfig, evaluate, train
from rewardforge.data.sample import prm_sample_paths
from rewardforge.evaluation.report import terminal_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("runs/prm-demo"))
    parser.add_argument("--epochs", type=float, default=2)
    args = parser.parse_args()
    train_file, _, processbench = prm_sample_paths()
    config = TrainConfig(
        data=[train_file],
        eval_data=[processbench],
        model="minilm-l6",
        output=str(args.work_dir / "prm"),
        batch_pairs=16,
        lr=1e-4,
        max_length=256,
        epochs=args.epochs,
        eval_steps=47,  # once an epoch: 750 problems, 16 a step
        load_best=True,
    )
    result = train(config)
    metrics = evaluate(result.output_dir, processbench, report_dir=args.work_dir / "eval")
    print(terminal_table({"minilm-l6 PRM": metrics}))
    print(f"report: {args.work_dir / 'eval' / 'report.html'}")


if __name__ == "__main__":
    main()
