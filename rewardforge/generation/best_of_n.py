"""`best_of_n()`: sample N answers per prompt, keep the best as SFT data, best-vs-worst as pairs.

The rejection-sampling step of Llama-style post-training: a policy proposes, the reward model
picks. The run appends to its output files and skips prompts already written, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rewardforge.data.appended_rows import append_rows, read_appended_rows
from rewardforge.data.example import PreferenceExample, Prompt
from rewardforge.data.prompt_rows import read_prompts_with_references
from rewardforge.errors import UserError
from rewardforge.generation.config import BestOfNSettings
from rewardforge.generation.knockout import knockout
from rewardforge.models.policy import Policy, SamplingSettings
from rewardforge.scoring.judge import Judge
from rewardforge.scoring.reward_model import RewardModel, recipe_before_loading


@dataclass
class BestOfNReport:
    """Prompts handled in this run, prompts skipped as already done, rows written."""

    prompts_done: int
    prompts_skipped: int
    sft_rows: int
    pair_rows: int


def best_of_n(
    policy: str | Policy,
    reward_model: str | Path | RewardModel | Judge,
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
    knockout: bool = False,
    judge_samples: int = 1,
) -> BestOfNReport:
    """Generate `n` answers per prompt, score them, write the `top_k` best as SFT rows.

    Prompt rows hold `prompt` (text or messages) or `messages`, and for a reference-based
    reward model the `reference` answer the samples are scored against. SFT rows are
    `{"prompt", "response", "reward", "rank"}`; with `pairs_output_path`, each prompt also gives
    `{"prompt", "chosen", "rejected", "chosen_reward", "rejected_reward"}` (best vs worst), which
    `rewardforge train` and TRL's DPO trainer read as they are. `reward_format` and `template`
    describe a reward model trained elsewhere (`RewardModel.load`).

    A judge that writes a grade (`Judge.grade`) ranks the answers by their mean grade over
    `judge_samples` replies: `reward` is that grade (None for an answer with none, ranked last)
    and `unparsed` counts its replies without one.

    With `knockout`, `reward_model` is a judge and the best answer wins a knockout over pairs
    (`generation/knockout.py`): its SFT row holds `wins` and `judge_probability` (the mean
    P(better) of its wins) instead of a reward, and its pair is the winner against the answer
    it beat most clearly, with that `judge_probability`.
    """
    if n < 2 or not 1 <= top_k <= n:
        raise UserError(f"--n must be at least 2 and --top-k between 1 and n; got {n}, {top_k}.")
    if knockout and top_k != 1:
        raise UserError("--knockout finds one best answer; use it with --top-k 1.")
    sampling = sampling or SamplingSettings()
    prompts = read_prompts_with_references(prompts_path)
    done = _done_prompts(Path(output_path))
    todo = [row for row in prompts if _key(row[1]) not in done]
    if not todo:  # everything was done by an earlier run: nothing to load
        return BestOfNReport(0, len(prompts), 0, 0)
    policy = policy if isinstance(policy, Policy) else Policy.load(policy)
    judge = _writing_judge(reward_model, reward_format, template, knockout)
    if knockout:
        assert judge is not None
        choose = _knockout_choice(judge, judge_samples)
    elif judge is not None:  # a judge that writes a grade for each answer
        choose = _grade_choice(judge, judge_samples, top_k)
    else:
        scorer = (
            reward_model
            if isinstance(reward_model, RewardModel)
            else RewardModel.load(
                reward_model, reward_format=reward_format, template=template, aggregate=aggregate
            )
        )
        choose = _reward_choice(scorer, top_k)
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
            kept, pair = choose(prompt, answers, reference)
            # The pair first, then the SFT rows, which mark the prompt done. A crash between
            # the two leaves a pair whose prompt is redone: `paired` keeps it from repeating.
            if pairs is not None and pair is not None and _key(prompt) not in paired:
                append_rows(pairs, [pair])
                pair_rows += 1
            append_rows(sft, kept)
            sft_rows += len(kept)
    return BestOfNReport(len(todo), len(prompts) - len(todo), sft_rows, pair_rows)


Row = dict[str, Any]
Choice = Callable[[Prompt, list[str], str | None], tuple[list[Row], Row | None]]


def _reward_choice(scorer: RewardModel, top_k: int) -> Choice:
    """The `top_k` answers by reward, and the best against the worst."""

    def choose(prompt: Prompt, answers: list[str], reference: str | None):
        # One group: the forward plan encodes the prompt once for all n answers.
        group = PreferenceExample(prompt, tuple(answers), reference=reference)
        rewards = scorer.score_examples([group])[0]
        ranked = sorted(zip(rewards, answers), key=lambda item: -item[0])
        (best_reward, best), (worst_reward, worst) = ranked[0], ranked[-1]
        pair = None
        if best != worst:
            pair = {
                "prompt": prompt,
                "chosen": best,
                "rejected": worst,
                "chosen_reward": best_reward,
                "rejected_reward": worst_reward,
            }
        kept = [
            {"prompt": prompt, "response": answer, "reward": reward, "rank": rank}
            for rank, (reward, answer) in enumerate(ranked[:top_k], start=1)
        ]
        return kept, pair

    return choose


def _writing_judge(
    reward_model: str | Path | RewardModel | Judge,
    reward_format: str,
    template: str | None,
    knockout: bool,
) -> Judge | None:
    """The judge that picks the best answers by its verdicts or written grades, or None where
    rewards rank them (a reward model, a verdict judge without --knockout)."""
    if isinstance(reward_model, Judge):
        judge = reward_model
    elif isinstance(reward_model, RewardModel):
        return None
    else:
        recipe, resolved = recipe_before_loading(reward_model, reward_format, template)
        if recipe.judge is None or not (knockout or recipe.judge.grades_answers):
            return None
        assert resolved is not None
        judge = Judge.load_resolved(resolved, reward_model)
    if not knockout and not judge.prompt.grades_answers:
        raise UserError(
            "this judge compares two answers and gives none a reward: pick the best with "
            "--knockout."
        )
    return judge


def _grade_choice(judge: Judge, samples: int, top_k: int) -> Choice:
    """The `top_k` answers by a grading judge's mean written grade (an answer with no grade
    last), and the best against the worst where both have a grade."""

    def choose(prompt: Prompt, answers: list[str], reference: str | None):
        if reference is not None:
            raise UserError("a judge grades answers without a reference answer.")
        grades = judge.grade([prompt] * len(answers), answers, samples=samples)
        ranked = sorted(
            zip(grades, answers),
            key=lambda item: math.inf if item[0].grade is None else -item[0].grade,
        )
        (best, best_answer), (worst, worst_answer) = ranked[0], ranked[-1]
        pair = None
        if best.grade is not None and worst.grade is not None and best.grade > worst.grade:
            pair = {
                "prompt": prompt,
                "chosen": best_answer,
                "rejected": worst_answer,
                "chosen_reward": best.grade,
                "rejected_reward": worst.grade,
            }
        kept = [
            {
                "prompt": prompt,
                "response": answer,
                "reward": grade.grade,
                "rank": rank,
                "unparsed": grade.unparsed,
            }
            for rank, (grade, answer) in enumerate(ranked[:top_k], start=1)
        ]
        return kept, pair

    return choose


def _knockout_choice(judge: Judge, samples: int) -> Choice:
    """The winner of a knockout over pairs, and the winner against the answer it beat most
    clearly."""
    asking = {"samples": samples} if judge.writer is not None else {}

    def choose(prompt: Prompt, answers: list[str], reference: str | None):
        if reference is not None:
            raise UserError("--knockout: a judge compares answers without a reference answer.")
        result = knockout(judge, prompt, answers, **asking)
        wins = result.winner_matches
        best = answers[result.winner]
        clearest = max(wins, key=lambda match: match.winner_probability)
        pair = None
        if answers[clearest.loser] != best:
            pair = {
                "prompt": prompt,
                "chosen": best,
                "rejected": answers[clearest.loser],
                "judge_probability": clearest.winner_probability,
            }
        row = {
            "prompt": prompt,
            "response": best,
            "rank": 1,
            "wins": len(wins),
            "judge_probability": sum(m.winner_probability for m in wins) / len(wins),
        }
        return [row], pair

    return choose


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
        knockout=settings.knockout,
        judge_samples=settings.judge_samples,
    )


def _done_prompts(output: Path) -> set[str]:
    """Prompts with rows in `output`."""
    return {_key(row["prompt"]) for row in read_appended_rows(output)}


def _key(prompt: Prompt) -> str:
    return json.dumps(prompt, ensure_ascii=False, sort_keys=True)
