"""The notes' demonstrations (trainlab.examples) reach the values the notes print."""
import subprocess
import sys

import pytest
import torch
from PIL import Image

from trainlab.errors import UserError
from trainlab.examples import EXAMPLES, list_examples, run_example

NAMES = ["conv-demo", "pool-demo", "activation-demo", "loss-demo", "two-layer-net", "custom-relu",
         "grad-accumulation", "dynamic-net", "linear-regression", "logistic-regression",
         "quadratic-fit", "loss-landscape", "transforms-demo", "save-load", "tensorboard-demo"]


def image_batch(rows):
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def assert_png(path, min_size=(400, 300)):
    assert path.is_file() and path.suffix == ".png"
    assert path.stat().st_size > 5_000, f"{path} looks empty"
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert img.size[0] >= min_size[0] and img.size[1] >= min_size[1]


def test_registry_lists_every_example_in_order():
    assert [name for name, _ in list_examples()] == NAMES
    assert all(summary for _, summary in list_examples())
    assert set(EXAMPLES) == set(NAMES)


HEAVY_MODULES = ("torch", "numpy", "matplotlib", "torchvision", "PIL", "tensorboard")


def test_listing_examples_imports_no_heavy_module():
    # A fresh interpreter: this test process has long imported torch. `trainlab ls` lists the
    # examples, so registering them must not load torch & co. (over a second of startup).
    code = ("import sys, trainlab.examples as e; e.list_examples(); "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY_MODULES!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_unknown_example_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown example 'nope'.*conv-demo"):
        run_example("nope", tmp_path)


def test_conv_demo(tmp_path):
    r = run_example("conv-demo", tmp_path)
    assert torch.equal(r["stride1"], image_batch([[10, 12, 12], [18, 16, 16], [13, 9, 3]]))
    assert torch.equal(r["stride2"], image_batch([[10, 12], [13, 3]]))
    assert torch.equal(r["padding1"], image_batch([[1, 3, 4, 10, 8], [5, 10, 12, 12, 6], [7, 18, 16, 16, 8],
                                                   [11, 13, 9, 3, 4], [14, 13, 9, 7, 4]]))
    assert torch.equal(r["kernel19_padding1"], image_batch([[91, 168, 224, 215, 127], [114, 211, 295, 262, 149],
                                                            [192, 259, 282, 214, 122], [194, 251, 253, 169, 86],
                                                            [96, 112, 110, 68, 31]]))
    assert torch.equal(r["kernel19_stride2"], image_batch([[211, 262], [251, 169]]))


def test_pool_demo(tmp_path):
    r = run_example("pool-demo", tmp_path)
    assert torch.equal(r["ceil_true"], image_batch([[2, 3], [5, 1]]))
    assert torch.equal(r["ceil_false"], image_batch([[2]]))
    assert torch.equal(r["pool2_4x4"], image_batch([[4, 8], [9, 8]]))


def test_activation_demo(tmp_path):
    r = run_example("activation-demo", tmp_path)
    assert torch.equal(r["relu"], torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
    expected = torch.tensor([[0.7311, 0.3775], [0.2689, 0.9526]])
    assert torch.allclose(r["sigmoid"], expected, atol=5e-5)


def test_loss_demo(tmp_path):
    r = run_example("loss-demo", tmp_path)
    assert round(r["l1_mean"], 4) == 0.6667 and r["l1_sum"] == 2.0
    assert round(r["mse"], 4) == 1.3333
    assert round(r["cross_entropy"], 4) == 1.1019
    assert round(r["batch_loss1"], 4) == 0.4966 and round(r["batch_loss2"], 4) == 1.2389
    assert r["nll_batch_loss1"] == pytest.approx(r["batch_loss1"], abs=1e-6)
    assert r["nll_batch_loss2"] == pytest.approx(r["batch_loss2"], abs=1e-6)
    assert r["nll_cross_entropy"] == pytest.approx(r["cross_entropy"], abs=1e-6)
    assert r["numpy_softmax_ce"] == pytest.approx(0.9729189131256584, abs=1e-12)


def test_two_layer_net(tmp_path):
    r = run_example("two-layer-net", tmp_path)
    assert set(r["losses"]) == {"numpy", "autograd", "my_relu", "sequential", "adam"}
    for name, loss in r["losses"].items():
        assert loss["last_loss"] < 0.01 * loss["first_loss"], name
    assert r["grads_match"] is True and r["grad_rel_diff"] < 1e-10


def test_custom_relu_passes_gradcheck(tmp_path):
    assert run_example("custom-relu", tmp_path)["gradcheck"] is True


def test_grad_accumulation_equals_big_batch(tmp_path):
    r = run_example("grad-accumulation", tmp_path)
    assert r["max_abs_diff"] < 1e-6
    assert r["max_abs_diff_float32"] < 1e-4  # the same up to float32 rounding
    assert r["last_loss"] < 0.1 * r["first_loss"]


def test_dynamic_net(tmp_path):
    r = run_example("dynamic-net", tmp_path)
    assert r["last_loss"] < 0.01 * r["first_loss"]
    assert r["param_count"] == r["three_linear_count"] == 1000 * 100 + 100 + 100 * 100 + 100 + 100 * 10 + 10
    assert r["unshared_depth3_count"] > r["param_count"]
    assert set(r["depth_counts"]) == {0, 1, 2, 3}


def test_linear_regression(tmp_path):
    r = run_example("linear-regression", tmp_path)
    assert abs(r["pred_4"] - 8) < 0.01
    assert r["w"] == pytest.approx(2, abs=0.01) and r["b"] == pytest.approx(0, abs=0.01)


def test_logistic_regression(tmp_path):
    r = run_example("logistic-regression", tmp_path)
    assert r["p_4"] == pytest.approx(0.87, abs=0.03)
    assert r["last_loss"] < r["first_loss"]
    assert r["plot"] == tmp_path / "logistic.png"
    assert_png(r["plot"])


def test_quadratic_fit(tmp_path):
    r = run_example("quadratic-fit", tmp_path)
    assert r["pred_4"] == pytest.approx(8.544172286987305, abs=1e-3)
    assert r["last_loss"] < r["first_loss"]


def test_loss_landscape(tmp_path):
    r = run_example("loss-landscape", tmp_path)
    assert len(r["ws"]) == 41 and r["w_min"] == pytest.approx(2.0)
    assert r["mse_at_0"] == pytest.approx(18.666666666666668, rel=1e-12)
    assert min(r["mse"]) == pytest.approx(0.0, abs=1e-20)
    assert r["w_gd"] == pytest.approx(1.9999444396553017, rel=1e-12)
    assert r["w_sgd"] == pytest.approx(1.9999999999999236, rel=1e-14)
    assert len(r["gd_costs"]) == len(r["sgd_losses"]) == 100
    assert r["gd_costs"][-1] < r["gd_costs"][0] and r["sgd_losses"][-1] < r["sgd_losses"][0]
    assert set(r["plots"]) == {"loss_vs_w", "loss_surface", "gd_vs_sgd"}
    for path in r["plots"].values():
        assert path.parent == tmp_path
        assert_png(path)


def check_transforms(r):
    c, h, w = r["tensor_shape"]
    assert c == 3 and (w, h) == tuple(r["size"])
    assert 0.0 <= r["tensor_min"] <= r["tensor_max"] <= 1.0
    assert r["roundtrip_equal"] and r["normalize_is_2v_minus_1"]
    assert r["resize_pair_shape"] == (3, 512, 512)
    short, long_ = sorted((h, w))
    shape = r["resize_int_shape"]
    assert min(shape[1:]) == 512 and max(shape[1:]) == pytest.approx(512 * long_ / short, abs=1)
    assert r["crop_shapes"] == [(3, 512, 512)] * 10


def test_transforms_demo(tmp_path):
    check_transforms(run_example("transforms-demo", tmp_path))


def test_transforms_demo_without_the_ants_images(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINLAB_DATA", str(tmp_path / "no-data"))
    r = run_example("transforms-demo", tmp_path)
    assert r["source"].startswith("synthetic") and r["size"] == (800, 600)
    assert r["resize_int_shape"] == (3, 512, 682)
    check_transforms(r)


def test_save_load(tmp_path, capsys):
    r = run_example("save-load", tmp_path)
    assert r["whole_needs_unpickling"] is True
    assert r["state_dict_identical"] is True and r["whole_identical"] is True
    assert r["fresh_differs_before_load"] is True
    assert r["whole_path"].is_file() and r["state_dict_path"].is_file()
    assert set(torch.load(r["state_dict_path"], weights_only=True)) >= {"0.weight", "0.bias"}
    assert "WARNING" in capsys.readouterr().out


def test_tensorboard_demo(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    r = run_example("tensorboard-demo", tmp_path)
    assert r["log_dir"] == tmp_path / "tb" and len(r["event_files"]) == 1
    acc = EventAccumulator(str(r["event_files"][0]))
    acc.Reload()
    tags = acc.Tags()
    assert "y=x^2" in tags["scalars"]
    assert {"ToTensor", "test", "input"} <= set(tags["images"])
    assert tags["graph"] is True
    scalars = acc.Scalars("y=x^2")
    assert [s.step for s in scalars] == list(range(100)) and scalars[-1].value == 99 ** 2


def run_module(*args):
    return subprocess.run([sys.executable, "-m", "trainlab.examples", *args],
                          capture_output=True, text=True, timeout=120)


def test_main_lists_examples():
    proc = run_module()
    assert proc.returncode == 0
    for name in NAMES:
        assert name in proc.stdout


def test_main_unknown_name_exits_2_with_one_line():
    proc = run_module("nope")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trainlab: error: unknown example 'nope'")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_main_runs_an_example_into_out_dir(tmp_path):
    proc = run_module("pool-demo", "--out", str(tmp_path / "pool"))
    assert proc.returncode == 0, proc.stderr
    assert "[[4., 8.], [9., 8.]]" in proc.stdout and "results:" in proc.stdout
    assert (tmp_path / "pool").is_dir()
