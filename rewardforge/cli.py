"""The `rewardforge` command line: a thin layer that parses flags and calls the API."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from rewardforge.api.command_settings import (
    BestOfNSettings,
    EvalSettings,
    PolarDataSettings,
    SamplingFlags,
    ScoreSettings,
    VerifySettings,
)
from rewardforge.api.policy_tuning_config import DPORunConfig, SFTRunConfig
from rewardforge.api.rlhf_config import RLHFConfig
from rewardforge.config_fields import help_text, settings_from_sources
from rewardforge.serving.settings import ServerSettings
from rewardforge.torch_environment import apply_torch_environment_defaults
from rewardforge.training.config import TrainConfig

app = typer.Typer(
    help="Train, evaluate and use reward models for RLHF.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _signature(config_class: type, *leading: inspect.Parameter) -> inspect.Signature:
    """A command's flags: `leading` ones, then one per field of `config_class` with its help.

    Every flag defaults to None, meaning 'not given', so that a --config YAML value is not
    overridden by a default.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    types = typing.get_type_hints(config_class)
    parameters = list(leading)
    for spec in dataclasses.fields(config_class):
        kind = _FLAG_TYPES.get(spec.name, types[spec.name])
        option = typer.Option(*spec.metadata["flags"], help=help_text(spec), show_default=False)
        annotation = Annotated[kind | None, option]
        parameters.append(
            inspect.Parameter(spec.name, keyword, default=None, annotation=annotation)
        )
    return inspect.Signature(parameters)


_CONFIG_FILE = inspect.Parameter(
    "config",
    inspect.Parameter.KEYWORD_ONLY,
    default=None,
    annotation=Annotated[
        Path | None, typer.Option(help="YAML file with any of these settings; flags win over it.")
    ],
)
# Settings whose flag takes text that the command parses (the dict and list that YAML gives).
_FLAG_TYPES: dict[str, Any] = {"columns": str, "lora_target_modules": str}


def _config_command(name: str, config_class: type) -> Callable[[Callable], Callable]:
    """Register a command taking `--config FILE` and one flag per field of `config_class`."""

    def register(command: Callable) -> Callable:
        command.__signature__ = _signature(config_class, _CONFIG_FILE)
        return app.command(name)(command)

    return register


def _settings(config_class: type, config_file: Path | None, flags: dict[str, Any]) -> Any:
    """The command's config: YAML file, then the flags given; a bad value exits with one line."""
    return _or_exit(lambda: config_class(**settings_from_sources(config_class, config_file, flags)))


@_config_command("train", TrainConfig)
def train_command(config: Path | None = None, **flags: Any) -> None:
    """Train a reward model on preference pairs and save it to --output."""
    from rewardforge.api.train import train
    from rewardforge.data.sample import sample_paths

    flags["columns"] = _parse_columns(flags["columns"])
    if flags["lora_target_modules"]:
        flags["lora_target_modules"] = flags["lora_target_modules"].split(",")
    settings = _settings(TrainConfig, config, flags)
    if not settings.data:
        settings.data, default_eval = map(lambda p: [p], sample_paths())
        settings.eval_data = settings.eval_data or default_eval
        typer.echo("No --data given: training on the bundled HH-RLHF harmless sample.")
    result = _or_exit(lambda: train(settings))
    if not _is_main_process():
        return
    if "eval_accuracy" in result.metrics:
        typer.echo(f"eval accuracy: {result.metrics['eval_accuracy']:.4f}")
    typer.echo(
        f"trained {result.metrics['train_pairs']} pairs in {result.metrics['train_runtime_s']:.1f}s"
        f" ({result.metrics['pairs_per_s']:.2f} pairs/s); saved to {result.output_dir}"
    )


@_config_command("eval", EvalSettings)
def eval_command(config: Path | None = None, **flags: Any) -> None:
    """Evaluate a reward model: accuracy with a 95% interval, categories, best-of-N, length
    bias, calibration; --report writes plots and report.html, --compare a second model."""
    from rewardforge.api.evaluate import compare as compare_models
    from rewardforge.api.evaluate import evaluate
    from rewardforge.evaluation.report import print_rank_changes, terminal_table

    flags["columns"] = _parse_columns(flags["columns"])
    settings = _settings(EvalSettings, config, flags)
    report = Path(settings.report) if settings.report else None
    options = {
        "columns": settings.columns,
        "skip_invalid": settings.skip_invalid,
        "progress": not settings.as_json,
        "report_dir": report,
    }
    model, data = settings.model, settings.data
    if settings.compare is None:
        metrics = _or_exit(lambda: evaluate(model, data, **options))
        reports = {Path(model).name: metrics}
    else:
        metrics = _or_exit(lambda: compare_models(model, settings.compare, data, **options))
        reports = metrics["models"]
    if settings.as_json:
        typer.echo(json.dumps(metrics, ensure_ascii=False))
        return
    typer.echo(terminal_table(reports))
    if settings.compare is not None:
        typer.echo(f"disagreements: {len(metrics['disagreements'])} examples")
        print_rank_changes(metrics["rank_changes"], metrics["preferred_first"])
    if report is not None:
        typer.echo(f"report: {report / 'report.html'}")


@_config_command("score", ScoreSettings)
def score_command(config: Path | None = None, **flags: Any) -> None:
    """Add a `reward` field to every row of a JSONL file, in input order."""
    from rewardforge.api.score import score_file

    settings = _settings(ScoreSettings, config, flags)
    report = _or_exit(
        lambda: score_file(
            settings.model,
            settings.input,
            settings.output,
            normalize=settings.normalize,
            skip_invalid=settings.skip_invalid,
            rejects_path=settings.rejects,
        )
    )
    typer.echo(f"scored {report.scored} rows -> {settings.output}")
    if report.rejects_path is not None:
        typer.echo(f"rejected {report.rejected} rows -> {report.rejects_path}")


@_config_command("serve", ServerSettings)
def serve_command(config: Path | None = None, **flags: Any) -> None:
    """Serve a reward model over HTTP: /v1/score, /get_reward (OpenRLHF), /health, /metrics."""
    import uvicorn

    from rewardforge.api.reward_model import RewardModel
    from rewardforge.serving.app import create_app

    settings = _settings(ServerSettings, config, flags)
    if not settings.model:
        _exit_with("serve needs --model DIR; see `rewardforge serve -h`.")
    api_key = None
    if settings.api_key_env is not None:
        api_key = os.environ.get(settings.api_key_env)
        if not api_key:
            _exit_with(
                f"--api-key-env {settings.api_key_env}: that environment variable is empty or "
                "unset. Export the key first, e.g. export RM_KEY=$(openssl rand -hex 16)."
            )
    if api_key is None and not settings.insecure and not _is_loopback(settings.host):
        _exit_with(
            f"--host {settings.host} lets other machines call the server, and it has no API "
            "key. Pass --api-key-env VAR (and export the key in VAR), or --insecure to serve "
            "without one."
        )
    reward_model = _or_exit(lambda: RewardModel.load(settings.model))
    app_ = create_app(reward_model, settings, api_key=api_key)
    uvicorn.run(app_, host=settings.host, port=settings.port)


def _exit_with(message: str) -> None:
    """A user's mistake: one red line and exit code 2."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


@_config_command("best-of-n", BestOfNSettings)
def best_of_n_command(config: Path | None = None, **flags: Any) -> None:
    """Rejection sampling: N answers per prompt, the reward model keeps the best (resumable)."""
    from rewardforge.api.best_of_n import best_of_n

    settings = _settings(BestOfNSettings, config, flags)
    report = _or_exit(
        lambda: best_of_n(
            settings.policy,
            settings.reward_model,
            settings.prompts,
            settings.output,
            n=settings.n,
            top_k=settings.top_k,
            pairs_output_path=settings.pairs_output,
            sampling=_sampling(settings),
        )
    )
    typer.echo(
        f"{report.prompts_done} prompts done ({report.prompts_skipped} already in "
        f"{settings.output}); wrote {report.sft_rows} SFT rows"
        + (f", {report.pair_rows} pairs" if settings.pairs_output else "")
    )


@_config_command("polar-data", PolarDataSettings)
def polar_data_command(config: Path | None = None, **flags: Any) -> None:
    """POLAR stage 1: a pool of policies answers the prompts; write pairs where a policy's own
    answer must beat another policy's, for `train --reference-mode` (resumable)."""
    from rewardforge.api.polar_data import polar_data

    settings = _settings(PolarDataSettings, config, flags)
    report = _or_exit(
        lambda: polar_data(
            settings.pool,
            settings.prompts,
            settings.output,
            answers_per_policy=settings.answers_per_policy,
            heldout_fraction=settings.heldout,
            seed=settings.seed,
        )
    )
    typer.echo(
        f"{report.prompts} prompts: {report.answers_generated} answer sets generated, "
        f"{report.answers_reused} reused; {report.train_pairs} train pairs, "
        f"{report.heldout_pairs} held-out pairs -> {settings.output}"
    )


@_config_command("verify", VerifySettings)
def verify_command(config: Path | None = None, **flags: Any) -> None:
    """Generate, score, and return the first answer over the threshold, else the fallback."""
    from dataclasses import asdict, replace

    from rewardforge.api.reward_model import RewardModel
    from rewardforge.api.verifier import Verifier
    from rewardforge.models.policy import Policy

    settings = _settings(VerifySettings, config, flags)
    judge = _or_exit(lambda: RewardModel.load(settings.reward_model))
    writer = _or_exit(lambda: Policy.load(settings.policy))
    sampling = _sampling(settings)
    verifier = _or_exit(
        lambda: Verifier(
            judge,
            settings.threshold,
            settings.max_attempts,
            settings.fallback,
            settings.normalized,
        )
    )

    def generate(text: Any, number: int) -> str:
        return writer.sample(text, 1, replace(sampling, seed=sampling.seed + number))[0]

    verdict = _or_exit(lambda: verifier(settings.prompt, generate, settings.reference))
    if settings.as_json:
        typer.echo(
            json.dumps(
                {**asdict(verdict), "used_fallback": verdict.used_fallback}, ensure_ascii=False
            )
        )
        return
    for number, attempt in enumerate(verdict.attempts, start=1):
        mark = "pass" if attempt.accepted else "fail"
        typer.echo(f"attempt {number}: reward {attempt.reward:.4f} [{mark}] {attempt.answer!r}")
    typer.echo(("answer: " if verdict.accepted else "fallback: ") + verdict.answer)


def _sampling(settings: SamplingFlags) -> Any:
    from rewardforge.models.policy import SamplingSettings

    return SamplingSettings(
        settings.max_new_tokens, settings.temperature, settings.top_p, settings.seed
    )


@_config_command("rlhf", RLHFConfig)
def rlhf_command(config: Path | None = None, **flags: Any) -> None:
    """Optimise a policy against a reward model with TRL's GRPO or RLOO; save it to --output."""
    from rewardforge.api.rlhf import rlhf

    settings = _settings(RLHFConfig, config, flags)
    result = _or_exit(lambda: rlhf(settings))
    metrics = result.metrics
    if not _is_main_process():
        return
    if metrics["heldout_reward_before"] is not None:
        typer.echo(
            f"held-out reward: {metrics['heldout_reward_before']:.4f} before, "
            f"{metrics['heldout_reward_after']:.4f} after"
        )
    typer.echo(f"{metrics['steps']} {settings.algo} steps; policy saved to {result.output_dir}")


@_config_command("sft", SFTRunConfig)
def sft_command(config: Path | None = None, **flags: Any) -> None:
    """Fine-tune a policy on demonstrations with TRL's SFTTrainer; save it to --output."""
    from rewardforge.api.policy_tuning import sft

    settings = _settings(SFTRunConfig, config, flags)
    result = _or_exit(lambda: sft(settings))
    _report_policy_run("sft", result.metrics, result.output_dir)


@_config_command("dpo", DPORunConfig)
def dpo_command(config: Path | None = None, **flags: Any) -> None:
    """Tune a policy on preference pairs with TRL's DPOTrainer; save it to --output."""
    from rewardforge.api.policy_tuning import dpo

    settings = _settings(DPORunConfig, config, flags)
    result = _or_exit(lambda: dpo(settings))
    _report_policy_run("dpo", result.metrics, result.output_dir)


def _is_main_process() -> bool:
    """False in the other processes of an `accelerate launch` run, which print nothing."""
    from accelerate import PartialState

    return PartialState().is_main_process


def _report_policy_run(name: str, metrics: dict[str, Any], output: Path) -> None:
    if not _is_main_process():
        return
    typer.echo(
        f"{name}: {metrics['steps']} steps on {metrics['train_examples']} examples, "
        f"loss {metrics['train_loss']:.4f}; saved to {output}"
    )


def _parse_columns(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    mapping = {}
    for item in text.split(","):
        canonical, sep, source = item.partition("=")
        if not sep or not canonical.strip() or not source.strip():
            raise typer.BadParameter(
                f"--columns expects canonical=source pairs like prompt=question, got {item!r}."
            )
        mapping[canonical.strip()] = source.strip()
    return mapping


def _or_exit(action):
    """Run `action`. A user's mistake becomes one line and exit code 2; a bug becomes exit code 1
    with its traceback written to a file whose path is printed. REWARDFORGE_DEBUG=1 re-raises."""
    from rewardforge.errors import UserError

    try:
        return action()
    except (UserError, OSError, ModuleNotFoundError) as error:
        if os.environ.get("REWARDFORGE_DEBUG"):
            raise
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from error
    except Exception as error:
        if os.environ.get("REWARDFORGE_DEBUG"):
            raise
        report = _write_crash_report()
        typer.secho(
            f"internal error: {type(error).__name__}: {error}\n"
            f"This is a bug in rewardforge, not a problem with your input. The full traceback "
            f"is in {report}; please include it when you report the bug.",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(code=1) from error


def _write_crash_report() -> Path:
    """Write the traceback being handled to the cache's crash-reports folder; return its path."""
    import datetime
    import sys
    import tempfile
    import traceback

    from rewardforge.models.backbones import cache_dir

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    text = f"rewardforge {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}"
    for folder in (cache_dir() / "crash-reports", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            report = folder / f"rewardforge-crash-{stamp}-{os.getpid()}.txt"
            report.write_text(text, encoding="utf-8")
            return report
        except OSError:
            continue
    sys.stderr.write(text)  # nowhere writable: print the traceback instead
    return Path("<stderr>")


def main() -> None:
    """The `rewardforge` command: torch's environment defaults first, then the CLI, then (under
    `accelerate launch`) leaving the process group."""
    apply_torch_environment_defaults()
    try:
        app()
    finally:
        _leave_process_group()


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


if __name__ == "__main__":
    main()
