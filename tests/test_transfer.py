"""Transfer learning (notes 000): torchvision VGG16/ResNet18 with a swapped head, local weights, freeze.

VGG16 has 138M parameters, so it is built only three times (two module fixtures and one fresh
model for the save/load round trip); loading weights is tested on ResNet18.
"""
import contextlib
import io

import pytest
import torch
import torchvision
from torch import nn

from trainlab.errors import UserError
from trainlab.models import MODELS, build_model
from trainlab.transfer import resnet18, vgg16

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # CIFAR-sized


def _quiet(fn, **kwargs):
    """Build a model and return it with what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model = fn(**kwargs)
    return model, out.getvalue()


@pytest.fixture(scope="module")
def vgg_replace():
    return _quiet(vgg16, num_classes=10)


@pytest.fixture(scope="module")
def vgg_append_frozen():
    return _quiet(vgg16, num_classes=5, head="append", freeze=True)[0]


@pytest.fixture
def resnet_file(tmp_path):
    """A deterministic torchvision ResNet18 state_dict saved to a local file, as a download would be."""
    torch.manual_seed(123)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    return path, state


def test_registered_with_input_shape():
    for name in ("vgg16", "resnet18"):
        assert MODELS[name].input_shape == (3, 224, 224)


def test_vgg_replace_head_and_random_init_message(vgg_replace):
    model, printed = vgg_replace
    assert model.classifier[6].in_features == 4096 and model.classifier[6].out_features == 10
    assert model.eval()(X).shape == (2, 10)
    lines = printed.strip().splitlines()
    assert len(lines) == 1 and "random init" in lines[0] and "weights=PATH" in lines[0]


def test_vgg_append_head_keeps_original_and_freezes_backbone(vgg_append_frozen):
    model = vgg_append_frozen
    assert isinstance(model.classifier.add_linear, nn.Linear)
    assert (model.classifier.add_linear.in_features, model.classifier.add_linear.out_features) == (1000, 5)
    assert (model.classifier[6].in_features, model.classifier[6].out_features) == (4096, 1000)
    assert model.eval()(X).shape == (2, 5)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.add_linear.weight", "classifier.add_linear.bias"}


def test_vgg_state_dict_round_trip(vgg_replace):
    """The notes' way 2: save the state_dict, load it into a fresh model with the same head."""
    model = vgg_replace[0].eval()
    buffer = io.BytesIO()  # in memory: a VGG16 file is ~530 MB that pytest would keep in /tmp
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh, _ = _quiet(vgg16, num_classes=10)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    del buffer
    with torch.no_grad():
        assert torch.equal(fresh.eval()(X), model(X))


@pytest.mark.parametrize("head, trainable", [("replace", {"fc.weight", "fc.bias"}),
                                             ("append", {"fc.1.weight", "fc.1.bias"})])
def test_resnet_heads_and_freeze_step(head, trainable):
    model, _ = _quiet(resnet18, num_classes=3, head=head, freeze=True)
    if head == "append":
        assert (model.fc[0].in_features, model.fc[0].out_features) == (512, 1000)
    else:
        assert (model.fc.in_features, model.fc.out_features) == (512, 3)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == trainable
    params = dict(model.named_parameters())
    head_name = sorted(trainable)[-1]  # the head's weight
    before_head, before_conv = params[head_name].clone(), model.conv1.weight.clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.eval()  # keep BatchNorm statistics fixed so only the optimizer could change tensors
    loss = nn.functional.cross_entropy(model(X), torch.tensor([0, 2]))
    assert loss.shape == ()
    loss.backward()
    opt.step()
    assert not torch.equal(params[head_name], before_head)
    assert torch.equal(model.conv1.weight, before_conv) and model.conv1.weight.grad is None


def test_resnet_loads_local_weights(resnet_file, capsys):
    path, state = resnet_file
    model = resnet18(num_classes=4, weights=str(path))
    assert torch.equal(model.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert model.fc.out_features == 4
    assert "random init" not in capsys.readouterr().out


@pytest.mark.parametrize("key", ["state_dict", "model"])
def test_resnet_loads_wrapped_weights(resnet_file, tmp_path, key):
    path, state = resnet_file
    wrapped = tmp_path / "wrapped.pth"
    torch.save({key: state, "epoch": 3}, wrapped)
    model = resnet18(weights=str(wrapped), head="append")
    assert torch.equal(model.fc[0].weight, state["fc.weight"])  # the original head keeps its weights


def test_weights_errors_name_file_and_key(resnet_file, tmp_path):
    path, state = resnet_file
    with pytest.raises(UserError, match="not found: .*nowhere.pth"):
        resnet18(weights=str(tmp_path / "nowhere.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({**state, "conv1.weight": torch.zeros(64, 1, 7, 7)}, bad)
    with pytest.raises(UserError, match=r"bad\.pth.*'conv1\.weight'"):
        resnet18(weights=str(bad))
    missing = tmp_path / "missing.pth"
    torch.save({k: v for k, v in state.items() if k != "fc.bias"}, missing)
    with pytest.raises(UserError, match=r"missing\.pth.*'fc\.bias' is missing"):
        resnet18(weights=str(missing))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="junk.pth"):
        resnet18(weights=str(junk))


def test_bad_arguments():
    with pytest.raises(UserError, match="replace, append"):
        resnet18(head="swap")
    with pytest.raises(UserError, match=r"\(3, H, W\)"):
        build_model("vgg16", num_classes=10, input_shape=(1, 28, 28))
    model, _ = _quiet(build_model, name="resnet18", num_classes=10, input_shape=(3, 32, 32))
    assert model.fc.out_features == 10


def test_freeze_on_a_random_backbone_warns(resnet_file, capsys):
    resnet18(num_classes=2, freeze=True)
    assert "warning: resnet18: freeze=true without weights=PATH" in capsys.readouterr().err
    resnet18(num_classes=2, freeze=True, weights=str(resnet_file[0]))
    assert "freeze=true" not in capsys.readouterr().err
