"""The Python API behind the CLI: recipes, resume, evaluation of checkpoints."""
import pytest
from torch import nn

import trainlab
from trainlab import api
from trainlab.errors import UserError


def test_losses_that_do_not_fit_the_targets(blobs, runs, data_dir):
    (x, _), val = blobs
    with pytest.raises(UserError, match="needs integer class labels"):
        trainlab.fit(nn.Linear(2, 3), (x, x[:, 0]), None, out_dir=str(runs))
    with pytest.raises(UserError, match="loss=mse is for regression targets"):
        api.train("table", data_path=str(data_dir / "diabetes.csv.gz"), loss="mse", out_dir=str(runs))


def test_eval_uses_the_checkpoint_table_preprocessing(tmp_path):
    csv = tmp_path / "houses.csv"
    rows = [f"{50 + i},{(50 + i) * 3 + (i % 7)}" for i in range(120)]
    csv.write_text("area,price\n" + "\n".join(rows) + "\n")
    run = api.train("table", data_path=str(csv), target="price", epochs=30, out_dir=str(tmp_path / "runs"),
                    tensorboard=False, plots=False).run_dir
    same = api.evaluate_run(str(run))
    scaled = tmp_path / "houses10.csv"  # a different file: refitting would hide the shift, the stored spec shows it
    scaled.write_text("area,price\n" + "\n".join(f"{int(r.split(',')[0]) * 10},{r.split(',')[1]}" for r in rows) + "\n")
    shifted = api.evaluate_run(str(run), data_path=str(scaled))
    assert shifted["loss"] > 100 * same["loss"]


def test_validation_is_carved_from_training_and_the_test_split_kept_apart(data_dir, runs):
    """val_fraction holds out part of the training rows (best.pt, metrics.csv's val_*); the test split
    is evaluated once at the end and is what `eval` reports."""
    r = api.train("table", data_path=str(data_dir / "diabetes.csv.gz"), epochs=3, val_fraction=0.25,
                  out_dir=str(runs), tensorboard=False, plots=False)
    val, test = r.metrics["samples"], r.test_metrics["samples"]
    assert test == 152 and abs(val - 607 * 0.25) <= 2  # 759 rows: 20 % test, then a quarter of the rest per class
    evaluated = api.evaluate_run(str(r.run_dir))
    assert evaluated["samples"] == test and evaluated["loss"] == pytest.approx(r.test_metrics["loss"], rel=1e-6)
    none = api.train("table", data_path=str(data_dir / "diabetes.csv.gz"), epochs=1, val_fraction=0,
                     out_dir=str(runs), tensorboard=False, plots=False)
    assert none.metrics["samples"] == 152 and none.test_metrics == {}  # validated on the test split
