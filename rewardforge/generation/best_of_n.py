"""`best_of_n()`: sample N answers per prompt, keep the best as SFT data, best-vs-worst as pairs.

The rejection-sampling step of Llama-style post-training: a policy proposes, the reward model
picks. The run appends to its output files and skips prompts already written, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm.auto import tqdm

from rewardforge.data.appended_rows import append_rows, read_appended_rows
from rewardforge.data.example import PreferenceExample, Prompt
from rewardforge.data.prompt_rows import read_prompts_with_references
from rewardforge.errors import UserError
from rewardforge.generation.config import BestOfNSettings
from rewardforge.models.policy import Policy, SamplingSettings
from rewardforge.scoring.reward_model import RewardModel


@dataclass
class BestOfNReport:
    """Prompts handled in this run, prompts skipped as already done, rows written."""

    prompts_done: int
    prompts_skipped: int
    sft_rows: int
    pair_rows: int


def best_of_n(
    policy: str | Policy,
    reward_model: str | Path | RewardModel,
    prompts_path: str | Path,
    output_path: str | Path,
    *,
    n: int = 8,
    top_k: int = 1,
    pairs_output_path: str | Path | None = None,
    sampling: SamplingSettings | None = None,
    progress: bool = True,
    reward_format: str = "auto",
    template: str | None = None,
    aggregate: str = "min",
) -> BestOfNReport:
    """Generate `n` answers per prompt, score them, write the `top_k` best as SFT rows.

    Prompt rows hold `prompt` (text or messages) or `messages`, and for a reference-based
    reward model the `reference` answer the samples are scored against. SFT rows are
    `{"prompt", "response", "reward", "rank"}`; with `pairs_output_path`, each prompt also gives
    `{"prompt", "chosen", "rejected", "chosen_reward", "rejected_reward"}` (best vs worst), which
    `rewardforge train` and TRL's DPO trainer read as they are. `reward_format` and `template`
    describe a reward model trained elsewhere (`RewardModel.load`).
    """
    if n < 2 or not 1 <= top_k <= n:
        raise UserError(f"--n must be at least 2 and --top-k between 1 and n; got {n}, {top_k}.")
    sampling = sampling or SamplingSettings()
    prompts = read_prompts_with_references(prompts_path)
    done = _done_prompts(Path(output_path))
    todo = [row for row in prompts if _key(row[1]) not in done]
    if not todo:  # everything was done by an earlier run: nothing to load
        return BestOfNReport(0, len(prompts), 0, 0)
    policy = policy if isinstance(policy, Policy) else Policy.load(policy)
    scorer = (
        reward_model
        if isinstance(reward_model, RewardModel)
        else RewardModel.load(
            reward_model, reward_format=reward_format, template=template, aggregate=aggregate
        )
    )
    sft_rows = pair_rows = 0
    with ExitStack() as files:
        sft = files.enter_context(open(output_path, "a", encoding="utf-8"))
        pairs = None
        paired = _done_prompts(Path(pairs_output_path)) if pairs_output_path else set()
        if pairs_output_path is not None:
            pairs = files.enter_context(open(pairs_output_path, "a", encoding="utf-8"))
        for index, prompt, reference in tqdm(
            todo, desc="Best-of-N", unit="prompt", disable=not progress
        ):
            answers = policy.sample(prompt, n, replace(sampling, seed=sampling.seed + index))
            # One group: the forward plan encodes the prompt once for all n answers.
            group = PreferenceExample(prompt, tuple(answers), reference=reference)
            rewards = scorer.score_examples([group])[0]
            ranked = sorted(zip(rewards, answers), key=lambda item: -item[0])
            (best_reward, best), (worst_reward, worst) = ranked[0], ranked[-1]
            # The pair first, then the SFT rows, which mark the prompt done. A crash between
            # the two leaves a pair whose prompt is redone: `paired` keeps it from repeating.
            if pairs is not None and best != worst and _key(prompt) not in paired:
                pair = {
                    "prompt": prompt,
                    "chosen": best,
                    "rejected": worst,
                    "chosen_reward": best_reward,
                    "rejected_reward": worst_reward,
                }
                append_rows(pairs, [pair])
                pair_rows += 1
            kept = ranked[:top_k]
            append_rows(
                sft,
                [
                    {"prompt": prompt, "response": answer, "reward": reward, "rank": rank}
                    for rank, (reward, answer) in enumerate(kept, start=1)
                ],
            )
            sft_rows += len(kept)
    return BestOfNReport(len(todo), len(prompts) - len(todo), sft_rows, pair_rows)


def best_of_n_with(settings: BestOfNSettings) -> BestOfNReport:
    """`rewardforge best-of-n`: `best_of_n` as its settings say."""
    return best_of_n(
        settings.policy,
        settings.reward_model,
        settings.prompts,
        settings.output,
        n=settings.n,
        top_k=settings.top_k,
        pairs_output_path=settings.pairs_output,
        sampling=settings.sampling(),
        reward_format=settings.reward_format,
        template=settings.template,
        aggregate=settings.aggregate,
    )


def _done_prompts(output: Path) -> set[str]:
    """Prompts with rows in `output`."""
    return {_key(row["prompt"]) for row in read_appended_rows(output)}


def _key(prompt: Prompt) -> str:
    return json.dumps(prompt, ensure_ascii=False, sort_keys=True)
