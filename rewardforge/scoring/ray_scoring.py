"""Scoring a corpus on Ray: `rewardforge score --engine ray` (`score_dataset` in ray_dataset.py
scores a Ray Dataset from Python).

The corpus (a JSONL or Parquet file, or a folder of them) is cut into shards of consecutive rows
(`--shard-rows` lines of a JSONL file; a Parquet file's row groups), so a prompt's responses stay
together and the forward plan still shares the prompt. Ray Data hands the shards to a pool of
`--workers` actors, each holding one `RewardModel`; an actor scores a shard exactly as
`rewardforge score` scores a file (`score_file`) and writes it to `OUTPUT/<shard>.jsonl` (or
`.parquet`) atomically, with a `row_id` (`file:line`) on every row. A shard already written is
skipped, so a killed job resumes where it stopped and nothing is scored twice. A bad row does
not stop the job: it goes to `OUTPUT/<shard>.rejects.jsonl` with its file, line and problem.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rewardforge.errors import UserError
from rewardforge.scoring.config import ScoreSettings
from rewardforge.scoring.reward_model import recipe_before_loading
from rewardforge.scoring.score import ScoreReport, score_file

INPUT_SUFFIXES = (".jsonl", ".parquet")


@dataclass(frozen=True)
class Shard:
    """Consecutive rows of one input file: lines `first`..`last` of a JSONL file (1-based), or
    one row group of a Parquet file. `path` is the file as the user named it (row ids and
    messages use it); `location` is where every actor reads it, whatever its working folder."""

    path: str
    name: str
    first: int
    last: int
    row_group: int | None = None
    location: str = ""

    @property
    def readable(self) -> str:
        return self.location or self.path


@dataclass
class RayScoreReport:
    """What a `--engine ray` run scored, skipped (already written) and rejected."""

    shards: int
    skipped: int
    scored: int
    rejected: int
    output_dir: Path
    tokens_in_rows: int = 0
    tokens_fed: int = 0  # a prompt shared by rows of one shard is fed once


def plan_shards(source: str | Path, shard_rows: int) -> list[Shard]:
    """The shards of a file or of every JSONL and Parquet file under a folder, in name order."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix in INPUT_SUFFIXES)
        if not files:
            raise UserError(f"{source}: no .jsonl or .parquet files in this folder.")
    elif source.is_file():
        if source.suffix not in INPUT_SUFFIXES:
            raise UserError(f"{source}: --engine ray reads .jsonl and .parquet files.")
        files = [source]
    else:
        raise UserError(f"{source}: no such file or folder.")
    shards: list[Shard] = []
    for path in files:
        stem = re.sub(
            r"[^\w.-]", "_", str(path.relative_to(source)) if source.is_dir() else path.name
        )
        location = str(path.resolve())
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            metadata = pq.ParquetFile(path).metadata
            start = 1
            for group in range(metadata.num_row_groups):
                rows = metadata.row_group(group).num_rows
                name = f"{stem}.{group:05d}"
                shards.append(Shard(str(path), name, start, start + rows - 1, group, location))
                start += rows
            continue
        with path.open("rb") as lines:
            count = sum(1 for _ in lines)
        for first in range(1, count + 1, shard_rows):
            last = min(count, first + shard_rows - 1)
            shards.append(Shard(str(path), f"{stem}.{first:09d}", first, last, None, location))
    return shards


def shard_output(output_dir: Path, shard: Shard, output_format: str = "jsonl") -> Path:
    return output_dir / f"{shard.name}.{output_format}"


class ShardScorer:
    """A Ray actor: one `RewardModel`, and `__call__` scoring a batch of shards."""

    def __init__(self, model: str, options: dict[str, Any], output_dir: str) -> None:
        from rewardforge.scoring.reward_model import RewardModel

        self.model = RewardModel.load(
            model,
            reward_format=options["reward_format"],
            template=options["template"],
            aggregate=options["aggregate"],
        )
        self.normalize = options["normalize"]
        self.output_format = options["output_format"]
        self.output_dir = Path(output_dir)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        done: dict[str, list] = {key: [] for key in ("shard", "scored", "rejected", "tokens")}
        keys = ("path", "name", "first", "last", "row_group", "location")
        for values in zip(*(batch[key] for key in keys)):
            group = None if values[4] is None or values[4] < 0 else int(values[4])
            shard = Shard(
                str(values[0]), str(values[1]), int(values[2]), int(values[3]), group, values[5]
            )
            report = score_shard(
                self.model, shard, self.output_dir, self.normalize, self.output_format
            )
            done["shard"].append(shard.name)
            done["scored"].append(report.scored)
            done["rejected"].append(report.rejected)
            done["tokens"].append([report.tokens_in_rows, report.tokens_fed])
        return done


def score_shard(
    model, shard: Shard, output_dir: Path, normalize: bool, output_format: str = "jsonl"
) -> ScoreReport:
    """Score one shard as `score_file` scores a file; write its rows (each with its `row_id`)
    and its rejects, then move them into place, the rows last (their file marks it done)."""

    lines = _shard_lines(shard)
    with tempfile.TemporaryDirectory(dir=output_dir) as work:
        given = Path(work) / "in.jsonl"
        given.write_text("\n".join(lines) + "\n", encoding="utf-8")  # line n is line first+n-1
        scored_file, rejects_file = Path(work) / "out.jsonl", Path(work) / "rejects.jsonl"
        report = score_file(
            model,
            given,
            scored_file,
            normalize=normalize,
            skip_invalid=True,
            rejects_path=rejects_file,
            progress=False,
        )
        skipped = {shard.first + i for i, line in enumerate(lines) if not line.strip()}
        if report.rejects_path is not None:
            rejects = [json.loads(line) for line in rejects_file.read_text("utf-8").splitlines()]
            for reject in rejects:
                reject["line"] += shard.first - 1
                reject["row_id"] = f"{shard.path}:{reject['line']}"
                skipped.add(reject["line"])
            _write_rows(Path(work) / "rejects.out", rejects)
            os.replace(Path(work) / "rejects.out", output_dir / f"{shard.name}.rejects.jsonl")
        numbers = [n for n in range(shard.first, shard.last + 1) if n not in skipped]
        written = [json.loads(line) for line in scored_file.read_text("utf-8").splitlines()]
        for row, number in zip(written, numbers, strict=True):
            row["row_id"] = f"{shard.path}:{number}"
        if output_format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            scored_file = Path(work) / "out.parquet"
            pq.write_table(pa.Table.from_pylist(written), scored_file)
        else:
            _write_rows(scored_file, written)
        os.replace(scored_file, shard_output(output_dir, shard, output_format))
    return report


def _shard_lines(shard: Shard) -> list[str]:
    """The shard's rows as JSON text, one a line: a JSONL file's own lines (a line that is not
    JSON stays as it is, and becomes a reject naming its line), a Parquet row group's rows."""
    if shard.row_group is not None:
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(shard.readable).read_row_group(shard.row_group).to_pylist()
        return [json.dumps(row, ensure_ascii=False, default=str) for row in rows]
    lines = []
    with open(shard.readable, "rb") as source:
        for number, line in enumerate(source, start=1):
            if number > shard.last:
                break
            if number >= shard.first:
                lines.append(line.rstrip(b"\n").decode("utf-8", errors="replace"))
    return lines


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")


def score_on_ray(settings: ScoreSettings) -> RayScoreReport:
    """`rewardforge score --engine ray`: every shard not yet written, on Ray Data's actor pool."""
    ray = ray_module()

    output_dir = Path(settings.output)
    shards = plan_shards(settings.input, settings.shard_rows)
    pending = [
        shard
        for shard in shards
        if not shard_output(output_dir, shard, settings.output_format).exists()
    ]
    report = RayScoreReport(len(shards), len(shards) - len(pending), 0, 0, output_dir)
    if not pending:
        return report
    # The model is checked here, in one line, before any actor starts.
    model = actor_path(settings.model)
    recipe_before_loading(model, settings.reward_format, settings.template)
    if not ray.is_initialized():
        connect(ray, settings.ray_address)
    output_dir.mkdir(parents=True, exist_ok=True)
    items = [
        {**shard.__dict__, "row_group": -1 if shard.row_group is None else shard.row_group}
        for shard in pending
    ]
    options = {
        "reward_format": settings.reward_format,
        "template": settings.template,
        "aggregate": settings.aggregate,
        "normalize": settings.normalize,
        "output_format": settings.output_format,
    }
    ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts shards
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # Ray's notes about its own bars
    done = ray.data.from_items(items).map_batches(
        ShardScorer,
        fn_constructor_args=(model, options, str(output_dir.resolve())),
        batch_size=1,
        concurrency=settings.workers,
        num_gpus=settings.gpus_per_worker,
    )
    for row in tqdm(done.iter_rows(), total=len(pending), desc="Scoring", unit="shard"):
        report.scored += int(row["scored"])
        report.rejected += int(row["rejected"])
        report.tokens_in_rows += int(row["tokens"][0])
        report.tokens_fed += int(row["tokens"][1])
    return report


def actor_path(model: str | Path) -> str:
    """A model folder by its full path (actors on a cluster do not run in this folder); a hub
    id as it is."""
    return str(Path(model).resolve()) if Path(model).exists() else str(model)


def connect(ray, address: str | None) -> None:
    """Join the Ray cluster at `address` (or `RAY_ADDRESS`), or start a local one; a cluster
    that cannot be reached is the user's to fix, said in one line."""
    if address and not _listening(address):  # Ray itself would retry for minutes
        raise UserError(
            f"--ray-address {address}: nothing listens there. Start a cluster with "
            "`ray start --head` and give the address it prints, or leave --ray-address out "
            "to start a local Ray for the run."
        )
    try:
        ray.init(
            address=address,
            log_to_driver=False,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    except ConnectionError as error:
        where = address or os.environ.get("RAY_ADDRESS")
        if where is None:  # Ray looked for the cluster `ray start` left on this machine
            raise UserError(
                f"a Ray cluster started on this machine earlier no longer answers ({error}). "
                "Run `ray stop` to forget it (a local Ray then starts for the run), or name a "
                "running cluster with --ray-address."
            ) from error
        raise UserError(
            f"--ray-address {where}: no Ray cluster answers there ({error}). Check the address "
            "with `ray status` on its head node; a cluster that uses token authentication also "
            "needs RAY_AUTH_MODE=token (and its token) in this shell."
        ) from error


def _listening(address: str) -> bool:
    """Whether a `host:port` address takes a connection (other forms, such as `auto` or a
    `ray://` client address, are left to Ray)."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return True
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return True
    except OSError:
        return False


def ray_module():
    """Ray, or one line saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as error:
        raise UserError(
            "--engine ray needs Ray Data: pip install 'rewardforge[ray]' (setup.sh installs it)."
        ) from error
    return ray
