"""The `rewardforge` commands: each parses its flags, calls the API and prints what it did.

Imports of torch and the rest happen inside each command, so that `rewardforge --help` is fast.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from rewardforge.adoption.config import AdoptSettings
from rewardforge.cli.exits import or_exit
from rewardforge.cli.flags import config_command, parse_columns, settings
from rewardforge.cli.run_reports import (
    echo_tokens,
    is_main_process,
    judge_line,
    report_judge_run,
    report_policy_run,
)
from rewardforge.evaluation.config import EvalSettings
from rewardforge.generation.config import BestOfNSettings, PolarDataSettings, VerifySettings
from rewardforge.policy.rlhf_config import RLHFConfig
from rewardforge.policy.tuning_config import DPORunConfig, SFTRunConfig
from rewardforge.scoring.config import ExportSettings, ParitySettings, ScoreSettings
from rewardforge.serving.config import ServerSettings
from rewardforge.torch_environment import (
    apply_command_environment_defaults,
    apply_torch_environment_defaults,
)
from rewardforge.training.config import TrainConfig

app = typer.Typer(
    help="Train, evaluate and use reward models for RLHF.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},  # the errors point at `-h`
)
REWARD_MODELS = "Reward models"
DATA = "Data"
POLICY_TRAINING = "Policy training"
SERVING = "Serving"


@config_command(app, "train", TrainConfig, REWARD_MODELS)
def train_command(config: Path | None = None, **flags: Any) -> None:
    """Train a reward model on preference pairs and save it to --output."""
    from rewardforge.data.sample import sample_paths
    from rewardforge.training.train import train

    flags["columns"] = parse_columns(flags["columns"])
    if flags["lora_target_modules"]:
        flags["lora_target_modules"] = flags["lora_target_modules"].split(",")
    run = settings(TrainConfig, config, flags)
    if not run.data:
        run.data, default_eval = map(lambda p: [p], sample_paths())
        run.eval_data = run.eval_data or default_eval
        typer.echo("No --data given: training on the bundled HH-RLHF harmless sample.")
    if run.kind == "generative":
        _train_judge(run)
        return
    result = or_exit(lambda: train(run))
    if not is_main_process():
        return
    if "eval_accuracy" in result.measured.evaluation:
        typer.echo(f"eval accuracy: {result.measured.evaluation['eval_accuracy']:.4f}")
    typer.echo(f"{result.measured.summary()}; saved to {result.output_dir}")


def _train_judge(run: TrainConfig) -> None:
    """`train --kind generative`: a verdict judge through TRL's SFT, evaluated on --eval-data."""
    from rewardforge.evaluation.evaluate import evaluate
    from rewardforge.policy.judge_training import train_judge

    result = or_exit(lambda: train_judge(run))
    metrics = None
    if run.eval_data and is_main_process():
        metrics = or_exit(lambda: evaluate(result.output_dir, run.eval_data, progress=False))
    report_judge_run(result.output_dir, result.metrics, metrics)


@config_command(app, "eval", EvalSettings, REWARD_MODELS)
def eval_command(config: Path | None = None, **flags: Any) -> None:
    """Evaluate a reward model: accuracy with a 95% interval and where it fails.

    Per-category accuracy, best-of-N, length bias and calibration; --report writes plots and
    report.html, --compare evaluates a second model side by side. --benchmark rewardbench2
    scores RewardBench 2's file by its own rules.
    """
    from rewardforge.evaluation.evaluate import evaluate_with
    from rewardforge.evaluation.report import print_rank_changes, terminal_table

    flags["columns"] = parse_columns(flags["columns"])
    run = settings(EvalSettings, config, flags)
    report = Path(run.report) if run.report else None
    metrics = or_exit(lambda: evaluate_with(run))
    if run.as_json:
        typer.echo(json.dumps(metrics, ensure_ascii=False))
        return
    if run.benchmark == "rewardbench2":
        from rewardforge.evaluation.rewardbench2 import rewardbench2_table

        typer.echo(rewardbench2_table(Path(run.model).name, metrics))
        if report is not None:
            typer.echo(f"report: {report / 'metrics.json'}, {report / 'scores.jsonl'}")
        return
    reports = {Path(run.model).name: metrics} if run.compare is None else metrics["models"]
    if not ("judge" in metrics and "accuracy" not in metrics):  # a reasoning judge: no rewards
        typer.echo(terminal_table(reports))
    if "judge" in metrics:
        typer.echo(judge_line(metrics["judge"]))
    if run.compare is not None:
        typer.echo(f"disagreements: {len(metrics['disagreements'])} examples")
        print_rank_changes(metrics["rank_changes"], metrics["preferred_first"])
    if report is not None:
        written = report / "report.html"
        typer.echo(f"report: {written if written.is_file() else report / 'metrics.json'}")


@config_command(app, "score", ScoreSettings, REWARD_MODELS)
def score_command(config: Path | None = None, **flags: Any) -> None:
    """Add a `reward` field to every row of a JSONL file, in input order (or a corpus on Ray)."""
    from rewardforge.scoring.score import score_with

    run = settings(ScoreSettings, config, flags)
    if run.engine == "ray":
        from rewardforge.scoring.ray_scoring import score_on_ray

        done = or_exit(lambda: score_on_ray(run))
        typer.echo(
            f"{done.shards} shards: {done.skipped} already written, {done.scored} rows scored, "
            f"{done.rejected} rejected -> {done.output_dir}"
        )
        echo_tokens(done.tokens_in_rows, done.tokens_fed)
        return
    report = or_exit(lambda: score_with(run))
    typer.echo(f"scored {report.scored} rows -> {run.output}")
    echo_tokens(report.tokens_in_rows, report.tokens_fed)
    if report.rejects_path is not None:
        typer.echo(f"rejected {report.rejected} rows -> {report.rejects_path}")


@config_command(app, "adopt", AdoptSettings, REWARD_MODELS)
def adopt_command(config: Path | None = None, **flags: Any) -> None:
    """Write a reward model trained elsewhere as a rewardforge model folder, once.

    TRL, OpenRLHF, Skywork-style, encoder pair, POLAR and InternLM2 reward models; the folder it
    writes loads as fast as one rewardforge trained.
    """
    from rewardforge.adoption.resolve import adopt_with

    run = settings(AdoptSettings, config, flags)
    adopted = or_exit(lambda: adopt_with(run))
    typer.echo(f"{run.source}: {adopted.summary or 'a rewardforge model'}; saved to {run.output}")


@config_command(app, "verify", VerifySettings, REWARD_MODELS)
def verify_command(config: Path | None = None, **flags: Any) -> None:
    """Generate, score, and return the first answer over the threshold, else the fallback."""
    from rewardforge.generation.verifier import verify

    run = settings(VerifySettings, config, flags)
    verdict = or_exit(lambda: verify(run))
    if run.as_json:
        record = {**asdict(verdict), "used_fallback": verdict.used_fallback}
        typer.echo(json.dumps(record, ensure_ascii=False))
        return
    for number, attempt in enumerate(verdict.attempts, start=1):
        mark = "pass" if attempt.accepted else "fail"
        typer.echo(f"attempt {number}: reward {attempt.reward:.4f} [{mark}] {attempt.answer!r}")
    typer.echo(("answer: " if verdict.accepted else "fallback: ") + verdict.answer)


@config_command(app, "best-of-n", BestOfNSettings, DATA)
def best_of_n_command(config: Path | None = None, **flags: Any) -> None:
    """Rejection sampling: N answers per prompt, the reward model keeps the best (resumable)."""
    from rewardforge.generation.best_of_n import best_of_n_with

    run = settings(BestOfNSettings, config, flags)
    report = or_exit(lambda: best_of_n_with(run))
    typer.echo(
        f"{report.prompts_done} prompts done ({report.prompts_skipped} already in "
        f"{run.output}); wrote {report.sft_rows} SFT rows"
        + (f", {report.pair_rows} pairs" if run.pairs_output else "")
    )


@config_command(app, "polar-data", PolarDataSettings, DATA)
def polar_data_command(config: Path | None = None, **flags: Any) -> None:
    """POLAR stage 1: pairs from a pool of policies, for `train --reference-mode` (resumable).

    Each policy answers the prompts; a pair asks that a policy's own answer beat another
    policy's, against a reference answer by the same policy.
    """
    from rewardforge.generation.polar_data import polar_data_with

    run = settings(PolarDataSettings, config, flags)
    report = or_exit(lambda: polar_data_with(run))
    typer.echo(
        f"{report.prompts} prompts: {report.answers_generated} answer sets generated, "
        f"{report.answers_reused} reused; {report.train_pairs} train pairs, "
        f"{report.heldout_pairs} held-out pairs -> {run.output}"
    )


@config_command(app, "sft", SFTRunConfig, POLICY_TRAINING)
def sft_command(config: Path | None = None, **flags: Any) -> None:
    """Fine-tune a policy on demonstrations with TRL's SFTTrainer; save it to --output."""
    from rewardforge.policy.tuning import sft

    run = settings(SFTRunConfig, config, flags)  # a bad value exits here, in one line
    result = or_exit(lambda: sft(run))
    report_policy_run("sft", result.metrics, result.output_dir)


@config_command(app, "dpo", DPORunConfig, POLICY_TRAINING)
def dpo_command(config: Path | None = None, **flags: Any) -> None:
    """Tune a policy on preference pairs with TRL's DPOTrainer; save it to --output."""
    from rewardforge.policy.tuning import dpo

    run = settings(DPORunConfig, config, flags)  # a bad value exits here, in one line
    result = or_exit(lambda: dpo(run))
    report_policy_run("dpo", result.metrics, result.output_dir)


@config_command(app, "rlhf", RLHFConfig, POLICY_TRAINING)
def rlhf_command(config: Path | None = None, **flags: Any) -> None:
    """Optimise a policy against a reward model: GRPO or RLOO (TRL's), or PPO; save it."""
    from rewardforge.policy.rlhf import rlhf

    run = settings(RLHFConfig, config, flags)
    result = or_exit(lambda: rlhf(run))
    metrics = result.metrics
    if not is_main_process():
        return
    if metrics["heldout_reward_before"] is not None:
        typer.echo(
            f"held-out reward: {metrics['heldout_reward_before']:.4f} before, "
            f"{metrics['heldout_reward_after']:.4f} after"
        )
    typer.echo(f"{metrics['steps']} {run.algo} steps; policy saved to {result.output_dir}")


@config_command(app, "serve", ServerSettings, SERVING)
def serve_command(config: Path | None = None, **flags: Any) -> None:
    """Serve a reward model over HTTP: /v1/score, /get_reward (OpenRLHF), /health, /metrics."""
    from rewardforge.serving.launch import serve

    run = settings(ServerSettings, config, flags)
    or_exit(lambda: serve(run))


@config_command(app, "verify-serving", ParitySettings, SERVING)
def verify_serving_command(config: Path | None = None, **flags: Any) -> None:
    """Check that a running server gives the rewards `score` gives offline; say why if not."""
    from rewardforge.scoring.serving_parity import verify_serving

    run = settings(ParitySettings, config, flags)
    report = or_exit(lambda: verify_serving(run))
    typer.echo(
        f"{report.rows} rows; largest difference {report.max_difference:.3g}; "
        f"{len(report.differing)} past the tolerance {run.tolerance:g}"
    )
    if report.matches:
        typer.echo(f"{run.url} gives the offline rewards.")
        return
    rows = ", ".join(str(index + 1) for index in report.differing[:10])
    typer.secho(f"rows that differ: {rows}", err=True, fg=typer.colors.RED)
    typer.secho(
        f"likely cause: {report.cause}" if report.cause else "likely cause: none of the known ones",
        err=True,
        fg=typer.colors.RED,
    )
    raise typer.Exit(code=1)


@config_command(app, "export", ExportSettings, SERVING)
def export_command(config: Path | None = None, **flags: Any) -> None:
    """Prepare a reward model folder for vLLM: its config, and vllm.json with the serve command."""
    import shlex

    from rewardforge.scoring.vllm_export import VLLM_FILE, export_for_vllm

    run = settings(ExportSettings, config, flags)
    serving = or_exit(lambda: export_for_vllm(run))
    for key, value in serving.config_changes.items():
        typer.echo(f"config.json: {key} = {json.dumps(value)}")
    typer.echo(f"wrote {Path(run.model) / VLLM_FILE}")
    typer.echo(f"serve: {shlex.join(serving.command)}")
    if serving.send == "token_ids":
        sent = "send token ids as `input` (this model's text does not tokenize back the same)"
    elif serving.send == "text_pair":
        sent = "send text_1 = the prompt as the recipe renders it, text_2 = the response"
    else:
        sent = (
            "send the conversation rendered by the model's recipe as `input`, with "
            f'"add_special_tokens": {json.dumps(serving.add_special_tokens)}'
        )
    typer.echo(f"requests: POST {serving.endpoint}; {sent}; each result holds {serving.reads}")


# Typer carries its own copy of Click; its usage error (an unknown flag or command, a value of
# the wrong type) is the base of the public `typer.BadParameter`.
USAGE_ERROR = typer.BadParameter.__mro__[1]


def main() -> None:
    """The `rewardforge` command: torch's environment defaults first, then the CLI, then (under
    `accelerate launch`) leaving the process group. A mistyped flag or a value of the wrong
    type is one line and exit code 2, like every other mistake (not Click's boxed usage)."""
    apply_torch_environment_defaults()
    apply_command_environment_defaults()
    try:
        code = app(standalone_mode=False)
    except USAGE_ERROR as error:
        path = error.ctx.command_path if error.ctx else ""  # "rewardforge" or "rewardforge train"
        listed = "flags" if " " in path else "commands"
        hint = f" ({path} -h lists the {listed})" if path else ""
        # Typer coerces values with pydantic, whose message opens with its own "Value error, "
        message = error.format_message().replace("Value error, ", "")
        typer.secho(f"error: {message}{hint}", err=True, fg=typer.colors.RED)
        code = 2
    except typer.Abort:  # Ctrl-C
        typer.secho("Aborted.", err=True)
        code = 130
    finally:
        _leave_process_group()
    sys.exit(code if isinstance(code, int) else 0)


def _leave_process_group() -> None:
    """Destroy torch's default process group, if the command joined one. Left to the
    interpreter's exit, gloo's threads sometimes abort a rank whose work is done ("terminate
    called without an active exception"), and the launcher then fails the whole run."""
    torch = sys.modules.get("torch")  # a command that never imported torch joined no group
    if (
        torch is not None
        and torch.distributed.is_available()
        and torch.distributed.is_initialized()
    ):
        torch.distributed.destroy_process_group()
