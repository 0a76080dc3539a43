import json
import warnings

from PIL import Image

from rewardforge.evaluation.plots import training_curves


def test_a_metric_that_was_never_logged_gets_a_labelled_empty_panel(tmp_path):
    """A log without accuracy (for example a run too short to log one) still plots, quietly."""
    log = tmp_path / "log.jsonl"
    records = [{"step": 1, "loss": 0.69}, {"step": 2, "loss": 0.65}, {"step": 2, "eval_loss": 0.7}]
    log.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns when a legend has nothing to show
        path = training_curves(log, tmp_path / "curves.png")
    assert Image.open(path).size == (1000, 400)
