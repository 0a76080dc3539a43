import json

from rewardforge.training.run_directory import keep_log_up_to, move_into, resume_checkpoint


def test_resume_takes_the_newest_complete_checkpoint_by_step(tmp_path):
    for step, complete in ((9, True), (10, True), (11, False)):
        checkpoint = tmp_path / "checkpoints" / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        if complete:
            (checkpoint / "trainer_state.json").write_text("{}")
    assert resume_checkpoint(tmp_path).endswith("checkpoint-10")


def test_resume_with_no_checkpoint_starts_over(tmp_path, capsys):
    assert resume_checkpoint(tmp_path) is None
    assert "starting from the beginning" in capsys.readouterr().out


def test_the_log_keeps_steps_up_to_the_checkpoint_and_drops_a_cut_line(tmp_path):
    log = tmp_path / "log.jsonl"
    records = [{"step": step, "loss": 1.0} for step in (1, 2, 3)]
    log.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 4, "lo')
    keep_log_up_to(log, 2)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2]


def test_move_into_replaces_old_files_and_puts_the_marker_last(tmp_path):
    staging, output = tmp_path / ".saving", tmp_path
    staging.mkdir()
    (staging / "model.safetensors").write_text("new")
    (staging / "adapter").mkdir()
    (staging / "adapter" / "a.json").write_text("new")
    (staging / "recipe.json").write_text("new")
    (output / "model.safetensors").write_text("old")
    (output / "adapter").mkdir()
    (output / "adapter" / "stale.json").write_text("old")
    move_into(staging, output, last="recipe.json")
    assert (output / "model.safetensors").read_text() == "new"
    assert sorted(p.name for p in (output / "adapter").iterdir()) == ["a.json"]
    assert (output / "recipe.json").read_text() == "new" and not staging.exists()
