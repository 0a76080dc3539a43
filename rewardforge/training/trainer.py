"""`RewardTrainer`: a transformers.Trainer that trains on preference groups.

Distribution (DDP, FSDP, DeepSpeed), checkpoints, resume, the progress bar and TensorBoard come
from transformers.Trainer and accelerate; this class only says how a batch becomes a loss, logs
the pair statistics, and evaluates through the shared forward plan.
"""

from __future__ import annotations

import contextlib
import math
from collections import defaultdict, deque
from collections.abc import Iterator
from typing import Any

import torch
from accelerate.utils import DistributedType, gather_object
from transformers import Trainer

from rewardforge.forward.plan import ForwardPlan
from rewardforge.training.callbacks import TrainingDiverged
from rewardforge.training.losses import LossOptions, loss_terms, pair_count
from rewardforge.training.metrics import pairwise_metrics

# Rewards of the last training forward passes kept for the stored mean/std when there is no
# evaluation set: the final model's statistics without a second pass over the training data.
RECENT_REWARDS = 2048


class RewardTrainer(Trainer):
    """Trains a reward model given as a `RewardForward` (backbone and head in one forward).

    Args:
        loss_options: the preference loss and the pairs it compares.
        plan: the forward plan that lays out batches (shared prompts or padded rows).
        eval_rows: tokenized evaluation groups, scored through the plan on evaluation.
        max_tokens_per_batch: token budget of an evaluation batch.
        max_tokens_per_micro_batch: token budget of a training forward pass. Each process's
            share of an optimizer step is one dataloader batch, cut into micro-batches of at most
            this many tokens fed (padding included), run and backpropagated one at a time.
    """

    def __init__(
        self,
        *args: Any,
        loss_options: LossOptions,
        plan: ForwardPlan,
        eval_rows: list[dict[str, Any]] | None,
        max_tokens_per_batch: int,
        max_tokens_per_micro_batch: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, data_collator=self._collate_step, **kwargs)
        # Micro-batches can hold different numbers of pairs (K-way groups, a short last step),
        # so compute_loss weights each by its share of the step's loss terms itself.
        self.loss_is_scaled_for_ga = True
        self.loss_options = loss_options
        self.plan = plan
        self.eval_rows = eval_rows
        self.max_tokens_per_batch = max_tokens_per_batch
        self.max_tokens_per_micro_batch = max_tokens_per_micro_batch
        self.eval_rewards: list[list[float]] | None = None  # from the latest evaluation
        self.tokens_fed = 0
        self.pairs_trained = 0
        self._pair_stats: dict[str, list[float]] = defaultdict(list)
        self.recent_rewards: deque[float] = deque(maxlen=RECENT_REWARDS)
        self._non_finite: str | None = None  # what turned NaN or infinite in this step

    def _collate_step(self, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        # DeepSpeed's engine steps the optimizer at every backward when accumulation is 1, so
        # under it a process runs its share of a step as one micro-batch.
        budget = math.inf if self.is_deepspeed_enabled else self.max_tokens_per_micro_batch
        return self.plan.collate_micro_batches(rows, budget)

    def training_step(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        """Forward and backward over the step's micro-batches, gradients accumulating.

        DDP and FSDP synchronise gradients once, after the last micro-batch.
        """
        micro_batches = inputs["micro_batches"]
        losses = []
        self._non_finite = None
        with self._sparse_embedding_gradient():
            for number, micro_batch in enumerate(micro_batches):
                last = number == len(micro_batches) - 1
                with contextlib.nullcontext() if last else self.accelerator.no_sync(model):
                    losses.append(super().training_step(model, micro_batch, num_items_in_batch))
        self._stop_if_any_process_diverged()
        return torch.stack(losses).sum()

    def _stop_if_any_process_diverged(self) -> None:
        """Raise `TrainingDiverged` on every process when any of them saw a non-finite reward
        or loss in this step, before the optimizer can apply its gradients.

        The processes agree through one reduction a step, taken after the step's backward
        passes (which every process runs, NaN or not), so none is left waiting in a collective.
        """
        flag = torch.tensor([0.0 if self._non_finite is None else 1.0], device=self.args.device)
        if self.accelerator.num_processes > 1:
            flag = self.accelerator.reduce(flag, reduction="sum")
        if flag.item() == 0:
            return
        step = self.state.global_step + 1
        seen = (
            f"the {self._non_finite} became non-finite"
            if self._non_finite
            else "another process's reward or loss became non-finite"
        )
        raise TrainingDiverged(
            f"At step {step} {seen}. Checkpoints saved before it are kept in "
            f"{self.args.output_dir}; lower --lr (or use bf16 rather than fp16) and run again, "
            "with --resume to continue from the last of them."
        )

    @contextlib.contextmanager
    def _sparse_embedding_gradient(self) -> Iterator[None]:
        """On one CPU process, keep the input embedding's gradient sparse until the step ends.

        A dense embedding gradient is a zero-filled vocabulary-by-hidden tensor, allocated and
        added into `.grad` at every backward; with one example per micro-batch on CPU, skipping
        that makes SmolLM2 train 3.5% faster. A sparse gradient holds only the rows the step's
        tokens touch; it is made dense once, before clipping and the optimizer see it. Under
        DDP, FSDP or DeepSpeed, and on GPUs, gradients stay dense as those expect.
        """
        embedding = self.model.transformers_model.get_input_embeddings()
        if not (
            self.args.device.type == "cpu"
            and self.accelerator.distributed_type == DistributedType.NO
            and isinstance(embedding, torch.nn.Embedding)
            and embedding.weight.requires_grad
        ):
            yield
            return
        was_sparse, embedding.sparse = embedding.sparse, True
        try:
            yield
        finally:
            embedding.sparse = was_sparse
            gradient = embedding.weight.grad
            if gradient is not None and gradient.is_sparse:
                embedding.weight.grad = gradient.to_dense()

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        rewards, loss, seen, stats = self.loss_and_stats(model, inputs)
        raw = loss
        if num_items_in_batch is not None:  # this micro-batch's share of the optimizer step
            share = self._loss_terms(inputs) / num_items_in_batch
            loss = loss * share * self.accelerator.num_processes  # DDP averages over processes
        if model.training:
            if not bool(seen.isfinite().all()):
                self._non_finite = "reward"
            elif not math.isfinite(raw.item()):
                self._non_finite = "loss"
            self.tokens_fed += inputs["input_ids"].numel()
            self.pairs_trained += self._pairs_compared(inputs)
            for name, value in stats.items():
                self._pair_stats[name].append(value.item())
            self.recent_rewards.extend(seen.tolist())
        return (loss, {"rewards": rewards}) if return_outputs else loss

    def loss_and_stats(
        self, model: torch.nn.Module, inputs: dict[str, torch.Tensor]
    ) -> tuple[Any, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(rewards, loss, the rewards as one detached tensor, statistics to log) of a
        micro-batch: the preference loss over its groups."""
        rewards = self.plan.rewards(model, inputs)
        output = self.loss_options(rewards, inputs["margin"])
        stats = {
            name: getattr(output, name)
            for name in ("accuracy", "margin", "chosen_reward", "rejected_reward")
        }
        return rewards, output.loss, rewards.values.detach()[rewards.present], stats

    def get_batch_samples(
        self, epoch_iterator: Iterator, num_batches: int, device: torch.device
    ) -> tuple[list, torch.Tensor]:
        """transformers' hook for the batches of one optimizer step, with the count that each
        micro-batch's loss is weighed by: the step's loss terms over all processes."""
        batch_samples, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        return batch_samples, self.loss_terms_in_step(batch_samples, device)

    def loss_terms_in_step(
        self, batch_samples: list[dict[str, Any]], device: torch.device
    ) -> torch.Tensor:
        """Loss terms (pairs, or groups for listwise) in this optimizer step, over all processes."""
        micro_batches = [batch for step in batch_samples for batch in step["micro_batches"]]
        terms = torch.tensor(sum(self._loss_terms(batch) for batch in micro_batches), device=device)
        return self.accelerator.gather(terms).sum() if self.accelerator.num_processes > 1 else terms

    def _loss_terms(self, batch: dict[str, torch.Tensor]) -> int:
        group_sizes = torch.bincount(batch["group_index"])
        return loss_terms(group_sizes, self.loss_options.loss, self.loss_options.pairs)

    def _pairs_compared(self, batch: dict[str, torch.Tensor]) -> int:
        """Pairs the loss compares in this micro-batch (see `pairs_counted`)."""
        group_sizes = torch.bincount(batch["group_index"])
        return pair_count(group_sizes, self.loss_options.pairs_mode)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._pair_stats:
            logs.update({name: sum(v) / len(v) for name, v in self._pair_stats.items()})
            self._pair_stats.clear()
        super().log(logs, start_time)

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """Score the evaluation groups through the forward plan and log pairwise metrics."""
        if not self.eval_rows:
            return {}
        metrics = self.score_eval_set(metric_key_prefix)
        self.log(dict(metrics))  # Trainer.log adds 'epoch' to the dict it is given
        self.control = self.callback_handler.on_evaluate(
            self.args, self.state, self.control, metrics
        )
        self.model.train()
        return metrics

    def score_eval_set(self, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Pairwise metrics of the model as it is now, neither logged nor seen by callbacks
        (the final model of a --load-best run is a step already logged)."""
        self.eval_rewards = self._score_eval_rows()
        metrics = pairwise_metrics(self.eval_rewards)
        return {f"{metric_key_prefix}_{key}": value for key, value in metrics.items()}

    def _score_eval_rows(self) -> list[list[Any]]:
        """Every evaluation group's rewards (a process reward model's: its solutions' step
        rewards), in order.

        Under DDP each process scores every N-th group and the parts are gathered. Under FSDP
        and DeepSpeed every forward is a collective that all processes must join with the same
        inputs, so there each process scores every group.
        """
        processes = self.accelerator.num_processes
        if processes == 1 or self.is_fsdp_enabled or self.is_deepspeed_enabled:
            return self.plan.score(
                self.model,
                self.eval_rows,
                self.max_tokens_per_batch,
                progress=self.is_world_process_zero(),
                description="Evaluating",
            )
        rank = self.accelerator.process_index
        mine = self.plan.score(
            self.model,
            self.eval_rows[rank::processes],
            self.max_tokens_per_batch,
            progress=self.is_world_process_zero(),  # the main process's share, as a bar
            description="Evaluating",
        )
        parts = gather_object([mine])  # one list per process, in process order
        rewards: list[list[Any]] = [[] for _ in self.eval_rows]
        for process, part in enumerate(parts):
            rewards[process::processes] = part
        return rewards

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """A checkpoint of a run with frozen weights (LoRA) holds only what training changes.

        Resuming rebuilds the model from --model and loads the checkpoint over it, so the frozen
        backbone need not be written at every save: a LoRA checkpoint of an 8B model takes
        megabytes instead of the 16 GB of its base weights.
        """
        if state_dict is None and not all(p.requires_grad for p in self.model.parameters()):
            changing = self._trained_names() | {name for name, _ in self.model.named_buffers()}
            state_dict = {k: v for k, v in self.model.state_dict().items() if k in changing}
        super()._save(output_dir, state_dict)

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        # Frozen weights are left out of checkpoints on purpose; only a trained one missing counts.
        trained = self._trained_names()
        missing = [key for key in load_result.missing_keys if key in trained]
        super()._issue_warnings_after_load(load_result._replace(missing_keys=missing))

    def _trained_names(self) -> set[str]:
        return {name for name, p in self.model.named_parameters() if p.requires_grad}

    def throughput_totals(self) -> tuple[int, int]:
        """(pairs trained, tokens fed to the model), summed over all processes."""
        totals = torch.tensor([self.pairs_trained, self.tokens_fed], device=self.args.device)
        totals = self.accelerator.reduce(totals, reduction="sum")
        return int(totals[0]), int(totals[1])
