"""Test-time augmentation: the flip and translate averages, checked by hand, and every evaluation
(validation, the final test, eval, report, predict) running them through the Runtime."""
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import trainlab
from conftest import _image_folder, eval_reproduces_last_row
from trainlab import api, tta
from trainlab.cli import main
from trainlab.config import Config, convert
from trainlab.data import TensorData
from trainlab.errors import UserError
from trainlab.runtime import build


class Net(nn.Module):
    """A small convolutional classifier: (B, 1, 8, 8) -> (B, 3)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class Mirrored(nn.Module):
    """g(x) + g(mirrored x): the same outputs, bitwise, for an image and its mirror image."""

    def __init__(self):
        super().__init__()
        self.g = Net()

    def forward(self, x):
        return self.g(x) + self.g(x.flip(-1))


class OnePixel(nn.Module):
    """Outputs the value of pixel (row, col) of channel 0: (B, C, H, W) -> (B, 1)."""

    def __init__(self, row: int, col: int):
        super().__init__()
        self.row, self.col = row, col

    def forward(self, x):
        return x[:, :1, self.row, self.col]


def test_flip_of_a_mirror_symmetric_model_is_its_plain_output():
    model, x = Mirrored(), torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(tta.forward(model, x, "flip"), model(x))
        assert not torch.allclose(tta.forward(model.g, x, "flip"), model.g(x))  # the plain net is not symmetric


def test_translate_of_a_constant_image_is_the_plain_output():
    model, x = Net(), torch.full((3, 1, 8, 8), 0.7)
    with torch.no_grad():
        torch.testing.assert_close(tta.forward(model, x, "translate"), model(x))


@pytest.mark.parametrize("row,col", [(2, 3), (0, 0)])  # an inner pixel, and a corner where reflection counts
def test_translate_is_the_weighted_average_of_the_six_views(row, col):
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)  # small integers: exact sums
    p = F.pad(x, (1, 1, 1, 1), mode="reflect")[:, 0]  # (B, 8, 8); p[i + 1, j + 1] = x[i, j]
    w = 6

    def at(i, j):  # pixel (i, j) of x, i and j in -1..6 (reflected at the border)
        return p[:, i + 1, j + 1]

    flipped = w - 1 - col  # the column of x that the mirrored image shows at `col`
    plain = 0.5 * at(row, col) + 0.5 * at(row, flipped)
    up_left = 0.5 * at(row + 1, col + 1) + 0.5 * at(row + 1, flipped + 1)  # shifted content: x[i + 1, j + 1]
    down_right = 0.5 * at(row - 1, col - 1) + 0.5 * at(row - 1, flipped - 1)
    expected = 0.5 * plain + 0.25 * up_left + 0.25 * down_right
    out = tta.forward(OnePixel(row, col), x, "translate")
    assert torch.equal(out[:, 0], expected)
    assert torch.equal(tta.forward(OnePixel(row, col), x, "flip")[:, 0], plain)


def test_channels_last_inputs_give_the_same_outputs():
    model, x = Net(), torch.randn(4, 1, 8, 8)
    nhwc = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(tta.forward(model, nhwc, "translate"), tta.forward(model, x, "translate"))


def images(n: int = 24) -> TensorData:
    g = torch.Generator().manual_seed(1)
    return TensorData(torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g),
                      torch.randint(0, 3, (n,), generator=g))


def test_runtime_evaluation_and_outputs_apply_tta_as_computed_by_hand():
    data = images()
    rt = build(Config(tta="flip", eval_batch_size=10, device="cpu", mean=[100.0], std=[50.0]), Net(), data)
    batches = rt.eval_batches(data)
    with torch.no_grad():
        outs = [(0.5 * rt.model(x) + 0.5 * rt.model(x.flip(-1)), y) for x, y in batches.epoch()]
    out, y = torch.cat([o for o, _ in outs]), torch.cat([y for _, y in outs])
    result = rt.evaluate(batches, 3)
    assert result["loss"] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-6)
    assert result["accuracy"] == (out.argmax(1) == y).sum().item() / len(y)
    torch.testing.assert_close(rt.outputs(batches), out)
    plain = build(Config(eval_batch_size=10, device="cpu", mean=[100.0], std=[50.0]), Net(), data)
    assert plain.evaluate(plain.eval_batches(data), 3)["loss"] != pytest.approx(result["loss"], rel=1e-6)


@pytest.fixture(scope="module")
def flip_run(tmp_path_factory):
    """A tiny image-folder run (36 PNGs of 16x16) trained with tta=flip; val_fraction=0 validates on
    the test split, the split eval reports."""
    root = tmp_path_factory.mktemp("tta")
    folder = _image_folder(root / "pictures")
    return api.train("image-folder", data_path=str(folder), image_size=16, transforms=[], epochs=2, batch_size=8,
                     lr=0.05, val_fraction=0, tta="flip", name="flip", out_dir=str(root / "runs"), threads=1,
                     cache=False, tensorboard=False, plots=False, quiet=True).run_dir


def test_cli_eval_of_a_tta_run_reproduces_its_validation_and_takes_an_override(flip_run, capsys):
    flip = eval_reproduces_last_row(flip_run, capsys)
    assert main(["eval", str(flip_run), "tta=none", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["loss"] != pytest.approx(flip["loss"], rel=1e-5)
    assert api.evaluate_run(str(flip_run), tta="none")["loss"] == pytest.approx(plain["loss"], rel=1e-6)
    assert main(["report", str(flip_run), "tta=translate", "--html"]) == 0
    out = capsys.readouterr().out
    loss = float(out.split("loss: ")[1].split()[0])
    assert loss == pytest.approx(api.evaluate_run(str(flip_run), tta="translate")["loss"], abs=1e-4)
    assert loss != pytest.approx(flip["loss"], abs=1e-4)


def test_predict_applies_the_runs_tta_or_the_one_given(flip_run):
    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    p = trainlab.load(flip_run)
    batch = p.runtime.eval_batches(TensorData(x, torch.zeros(4, dtype=torch.int64)))
    with torch.no_grad():
        inputs = next(iter(batch.epoch()))[0]  # normalised as evaluation does
        expected = 0.5 * p.model(inputs) + 0.5 * p.model(inputs.flip(-1))
        plain = p.model(inputs)
    torch.testing.assert_close(p.forward(x), expected)
    top = p.predict([x[0]], top_k=3)[0].top
    torch.testing.assert_close(torch.tensor([dict(top)[c] for c in p.classes]), expected[0].softmax(0),
                               atol=1e-6, rtol=0)
    torch.testing.assert_close(trainlab.load(flip_run, tta="none").forward(x), plain)
    assert not torch.allclose(plain, expected)


def test_cli_predict_takes_tta(flip_run, tmp_path, capsys):
    from PIL import Image

    pixels = torch.randint(0, 256, (16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    Image.fromarray(pixels.numpy()).save(tmp_path / "a.png")
    capsys.readouterr()
    assert main(["predict", str(flip_run), str(tmp_path / "a.png"), "--json"]) == 0
    flip = json.loads(capsys.readouterr().out)[0]["predictions"]
    assert main(["predict", str(flip_run), str(tmp_path / "a.png"), "--json", "--tta", "none"]) == 0
    plain = json.loads(capsys.readouterr().out)[0]["predictions"]
    assert {d["class"] for d in flip} == {d["class"] for d in plain} and flip != plain


def test_bad_tta_value_and_non_image_inputs_are_user_errors(blobs, quiet):
    with pytest.raises(UserError, match=r"bad value 'rotate' for 'tta': allowed values are none, flip, translate"):
        convert("tta", "rotate")
    with pytest.raises(UserError, match=r"tta=flip is for image inputs .* shape \(2,\)"):
        trainlab.fit(nn.Linear(2, 3), *blobs, epochs=1, tta="flip", **quiet)
    with pytest.raises(UserError, match=r"tta=translate is for image inputs"):
        tta.forward(nn.Linear(2, 3), torch.zeros(4, 2), "translate")
    with pytest.raises(UserError, match=r"at least 2x2 pixels"):
        tta.check_inputs("translate", (4, 3, 1, 8))
