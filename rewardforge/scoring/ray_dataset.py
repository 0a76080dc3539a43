"""`score_dataset`: rewards for the rows of a Ray Dataset, from Python, by a pool of actors that
each hold one `RewardModel`; bad rows get an `error` instead of a reward."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rewardforge.scoring.ray_scoring import actor_path, ray_module


class RowScorer:
    """A Ray actor for `score_dataset`: one `RewardModel`; a batch of rows in, the same rows
    with `reward` (None for a bad row) and `error` (its problem, else None) out."""

    def __init__(self, model: str, options: dict[str, Any]) -> None:
        from rewardforge.scoring.reward_model import RewardModel

        self.model = RewardModel.load(
            model, reward_format=options["reward_format"], template=options["template"]
        )
        self.normalize = options["normalize"]

    def __call__(self, batch):  # a pyarrow Table
        import pyarrow as pa

        from rewardforge.data.formats import RowError
        from rewardforge.data.scoring_rows import parse_reference, parse_scoring_item

        rewards: list[float | None] = [None] * batch.num_rows
        errors: list[str | None] = [None] * batch.num_rows
        good = []
        for index, row in enumerate(batch.to_pylist()):
            try:
                good.append((index, *parse_scoring_item(row), parse_reference(row)))
            except RowError as error:
                errors[index] = str(error)
        if good:
            references = [item[3] for item in good] if self.model.reference_mode else None
            scored = self.model.score(
                [item[1] for item in good], [item[2] for item in good], references, self.normalize
            )
            for (index, *_), reward in zip(good, scored):
                rewards[index] = reward
        batch = batch.append_column("reward", pa.array(rewards, pa.float64()))
        return batch.append_column("error", pa.array(errors, pa.string()))


def score_dataset(
    dataset,
    model: str | Path,
    *,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    batch_size: int = 256,
    normalize: bool = False,
    reward_format: str = "auto",
    template: str | None = None,
):
    """A Ray Dataset of rows to score (prompt + response, or messages; `reference` for a
    reference-based model) -> the same rows with `reward` and `error` columns, scored by
    `workers` actors that each hold one copy of the model. Lazy, as Ray Datasets are."""
    ray_module()
    options = {"reward_format": reward_format, "template": template, "normalize": normalize}
    return dataset.map_batches(
        RowScorer,
        fn_constructor_args=(actor_path(model), options),
        batch_size=batch_size,
        batch_format="pyarrow",
        concurrency=workers,
        num_gpus=gpus_per_worker,
    )
