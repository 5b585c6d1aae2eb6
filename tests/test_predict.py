import json

import pytest
import torch
from PIL import Image

import trainlab
from trainlab import api, checkpoint
from trainlab.cli import main
from trainlab.data import build_dataset
from trainlab.errors import UserError


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return api.train("mnist-cnn", epochs=2, out_dir=str(out), tensorboard=False, plots=False).run_dir


def test_images_get_exactly_the_evaluation_preprocessing(mnist_run, tmp_path):
    test = build_dataset("mnist-sample").test
    Image.fromarray(test.x[0, 0].numpy()).save(tmp_path / "a.png")  # 28x28 grayscale, as in the test set
    Image.fromarray(test.x[1, 0].numpy()).convert("RGB").resize((112, 112), Image.NEAREST).save(tmp_path / "b.jpg", quality=100)
    p = trainlab.load(mnist_run)
    a, b = p.predict([tmp_path / "a.png", tmp_path / "b.jpg"], top_k=10)
    with torch.no_grad():  # the same sample through the run's own evaluation path
        ref = torch.softmax(p.forward(test.x[:1]), 1)[0]
    probs = dict(a.top)
    assert torch.allclose(torch.tensor([probs[str(i)] for i in range(10)]), ref, atol=1e-5)
    assert b.top[0][0] == p.predict([test.x[1]])[0].top[0][0]  # an upscaled RGB JPEG of the same digit


def test_cli_predict_folder_json_and_bad_file(mnist_run, tmp_path, capsys):
    test = build_dataset("mnist-sample").test
    folder = tmp_path / "digits"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(test.x[i, 0].numpy()).save(folder / f"{i}.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    code = main(["predict", str(mnist_run), str(folder), str(tmp_path / "broken.png"), "--json", "--top-k", "2"])
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert code == 1 and len(rows) == 4
    assert [len(r["predictions"]) for r in rows[:3]] == [2, 2, 2]
    assert "broken.png" in rows[3]["error"] and "cannot read image" in err


def test_table_rows_get_the_fitted_preprocessing(data_dir, tmp_path):
    from trainlab.data.table import read_table, transform

    run = api.train("table", data_path=str(data_dir / "diabetes.csv.gz"), epochs=3, out_dir=str(tmp_path),
                    tensorboard=False, plots=False).run_dir
    rows = tmp_path / "rows.csv"
    rows.write_text("-0.29,0.49,0.18,-0.29,0,0,-0.53,-0.03\n-0.88,-0.15,0.08,-0.41,0,-0.21,-0.77,-0.67\n")
    p = trainlab.load(run)
    results = p.predict([rows], top_k=2)
    assert [r.input for r in results] == [f"{rows}:row 1", f"{rows}:row 2"]
    spec = checkpoint.load(run / "checkpoints" / "last.pt")["info"]["table"]
    x, _ = transform(spec, *read_table(rows), with_target=False)  # the train split's fitted statistics
    with torch.no_grad():
        ref = torch.softmax(p.model(x), 1)
    for r, probs in zip(results, ref):
        assert dict(r.top)["1"] == pytest.approx(probs[1].item(), abs=1e-6)
    assert spec["features"][0]["mean"] != pytest.approx(0.0, abs=1e-9)  # statistics really were fitted


@pytest.mark.slow
def test_regression_recipes_reach_the_notes_results(runs, tmp_path):
    lin = api.train("linear-regression", out_dir=str(runs), tensorboard=False)
    csv = tmp_path / "x.csv"
    csv.write_text("4\n")
    assert abs(trainlab.load(lin.run_dir).predict([csv])[0].value[0] - 8) < 0.01
    log = api.train("logistic-regression", out_dir=str(runs), tensorboard=False)
    top = dict(trainlab.load(log.run_dir).predict([csv])[0].top)
    assert abs(top["pass"] - 0.87) < 0.03


def test_checkpoint_whose_model_does_not_match_its_config(mnist_run, tmp_path):
    state = checkpoint.load(mnist_run / "checkpoints" / "last.pt")
    state["config"]["model"] = "mnist-mlp"
    bad = tmp_path / "bad.pt"
    checkpoint.save(state, bad)
    with pytest.raises(UserError, match=r"bad.pt: the weights do not match model 'mnist-mlp'"):
        trainlab.load(bad)
