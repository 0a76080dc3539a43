"""`Judge`: a generative reward model asked which of two answers is better, in both orders.

A verdict judge, loaded as a `RewardModel`, gives one reward per answer (the log-odds of its
"Yes"), which every command reads like any reward model's; its pairwise question is read in one
forward pass, both orders of a pair together (the question before the first answer fed once).
A reasoning judge writes a rationale and a verdict (`written_verdicts.py`), `samples` times an
order. Either way the two orders' verdicts are averaged, so that a preference for a position
cancels out; how often the two disagree is the judge's position bias. A grading judge
(Prometheus 2's absolute grading) writes a grade for one answer (`grade`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rewardforge.adoption.resolve import ResolvedRewardModel, resolve_reward_model
from rewardforge.data.example import Prompt
from rewardforge.errors import UserError
from rewardforge.forward.reward_forward import RewardForward
from rewardforge.models.policy import Policy, SamplingSettings
from rewardforge.recipe.encoder import EncodedGroup
from rewardforge.recipe.judge_prompt import JudgePrompt
from rewardforge.scoring.pair_verdict import PairVerdict, position_bias
from rewardforge.scoring.reward_model import RewardModel
from rewardforge.scoring.written_verdicts import WrittenGrade, written_grades, written_verdicts

__all__ = ["Judge", "PairVerdict", "WrittenGrade", "position_bias"]


class Judge:
    """A judge trained by `train --kind generative`: a verdict judge (`Judge(reward_model)`)
    or a reasoning judge (`Judge.writing(policy, judge_prompt)`); `Judge.load` picks."""

    def __init__(self, reward_model: RewardModel) -> None:
        if reward_model.recipe.judge is None:
            raise UserError(
                "this reward model is not a judge: it gives a reward per answer and no verdict "
                "on two. Train one with `rewardforge train --kind generative`."
            )
        self.reward_model: RewardModel | None = reward_model
        self.prompt: JudgePrompt = reward_model.recipe.judge
        self.pairwise_forward = RewardForward(reward_model.model, output=1)
        self.writer: Policy | None = None

    @classmethod
    def writing(cls, writer: Policy, prompt: JudgePrompt) -> Judge:
        """A reasoning judge: `writer` writes a rationale and a verdict to `prompt`'s question."""
        judge = cls.__new__(cls)
        judge.reward_model, judge.prompt, judge.writer = None, prompt, writer
        return judge

    @classmethod
    def load(
        cls,
        directory: str | Path,
        device: str | None = None,
        reward_format: str | None = None,
        template: str | None = None,
    ) -> Judge:
        """Load a judge saved by `rewardforge train --kind generative` or `adopt --reward-format
        judge`; `reward_format="judge"` asks any language model rewardforge's own questions."""
        resolved = resolve_reward_model(directory, reward_format, template)
        return cls.load_resolved(resolved, directory, device)

    @classmethod
    def load_resolved(
        cls, resolved: ResolvedRewardModel, directory: str | Path, device: str | None = None
    ) -> Judge:
        """Load the judge `resolve_reward_model` found at `directory` (as
        `RewardModel.load_resolved` does a reward model)."""
        recipe = resolved.recipe
        if recipe.judge is not None and recipe.judge.style == "reasoning":
            writer = Policy.load(str(resolved.folder))
            if recipe.template == "plain":  # asked as plain text in training, so here too
                writer.tokenizer.chat_template = None
            return cls.writing(writer, recipe.judge)
        return cls(RewardModel.load_resolved(resolved, directory, device=device))

    def judge_pairs(
        self,
        prompts: Sequence[Prompt],
        answers_1: Sequence[str],
        answers_2: Sequence[str],
        progress: bool = False,
        samples: int = 1,
        max_new_tokens: int = 256,
        seed: int = 0,
    ) -> list[PairVerdict]:
        """The judge's verdict on each (prompt, answer 1, answer 2), asked in both orders (a
        reasoning judge: `samples` written replies an order, up to `max_new_tokens` each)."""
        if not len(prompts) == len(answers_1) == len(answers_2):
            raise UserError("judge_pairs needs one prompt and two answers per pair.")
        if self.writer is not None:
            settings = SamplingSettings(max_new_tokens=max_new_tokens, seed=seed)
            return written_verdicts(
                self.writer, self.prompt, prompts, answers_1, answers_2, settings, samples
            )
        model = self.reward_model
        assert model is not None
        encoder = model.encoder
        rows = [
            EncodedGroup([encoder.encode_pair(p, a, b), encoder.encode_pair(p, b, a)]).as_row()
            for p, a, b in zip(prompts, answers_1, answers_2)
        ]
        scored = model.plan.score(
            self.pairwise_forward, rows, model.max_tokens_per_batch, progress=progress
        )
        return [PairVerdict(in_order, swapped) for in_order, swapped in scored]

    def grade(
        self,
        prompts: Sequence[Prompt],
        answers: Sequence[str],
        samples: int = 1,
        max_new_tokens: int = 256,
        seed: int = 0,
    ) -> list[WrittenGrade]:
        """A grading judge's grade of each answer to its prompt: the mean of `samples` written
        grades (None where no reply held one; `WrittenGrade.unparsed` counts those replies)."""
        if self.writer is None or not self.prompt.grades_answers:
            raise UserError(
                "this judge writes no grade: only a judge adopted with a grading template "
                "(--judge-template prometheus2-absolute) grades one answer."
            )
        if len(prompts) != len(answers):
            raise UserError("grade needs one prompt per answer.")
        settings = SamplingSettings(max_new_tokens=max_new_tokens, seed=seed)
        return written_grades(self.writer, self.prompt, prompts, answers, settings, samples)

    def compare(self, prompt: Prompt, answer_1: str, answer_2: str) -> float:
        """P(answer 1 is better than answer 2), averaged over both orders."""
        return self.judge_pairs([prompt], [answer_1], [answer_2])[0].first_better
