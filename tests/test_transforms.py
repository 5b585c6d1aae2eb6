import pytest
import torch

from trainlab.data import TensorData
from trainlab.data.batches import Normalize, TensorBatches
from trainlab.data.loader import LoaderBatches
from trainlab.data.transforms import BatchAugment, eval_version, parse, per_sample_pipeline
from trainlab.errors import UserError

CPU = torch.device("cpu")


def test_parse_and_errors():
    s = parse("RandomCrop(32, padding=4)")
    assert s.name == "RandomCrop" and s.args == (32,) and dict(s.kwargs) == {"padding": 4}
    assert parse("RandomHorizontalFlip").name == "RandomHorizontalFlip"
    with pytest.raises(UserError, match=r"unknown transform 'Blur'; supported: ToTensor, .*ColorJitter"):
        parse("Blur(3)")
    with pytest.raises(UserError, match=r"bad arguments for transform Resize\(\)"):
        parse("Resize()")
    with pytest.raises(UserError, match=r"cannot read transform"):
        parse("RandomCrop(__import__('os'))")
    assert [str(x) for x in eval_version([parse("RandomCrop(24, padding=2)"), parse("RandomHorizontalFlip()")])] == ["CenterCrop(24)"]


def test_batch_random_crop_and_flip():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.int64).view(2, 3, 8, 8).to(torch.uint8)
    aug = BatchAugment([parse("RandomCrop(6, padding=2)"), parse("RandomHorizontalFlip(p=1.0)")], seed=0)
    out = aug(x, epoch=0, batch=0)
    assert out.shape == (2, 3, 6, 6)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2)).flip(3)
    for i in range(2):  # each output is some 6x6 window of the padded, flipped image
        windows = padded[i].unfold(1, 6, 1).unfold(2, 6, 1)  # (C, 7, 7, 6, 6)
        assert any(torch.equal(windows[:, r, c], out[i]) for r in range(7) for c in range(7))
    assert torch.equal(out, aug(x, epoch=0, batch=0))
    assert not torch.equal(out, aug(x, epoch=1, batch=0))


@pytest.mark.parametrize("mode,extra", [("reflect", ""), ("edge", ""), ("symmetric", ""), ("constant", ", fill=7")])
def test_batch_random_crop_pads_as_torchvision_does(mode, extra):
    from torchvision.transforms.v2 import functional as TF

    x = torch.randint(0, 256, (16, 3, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    aug = BatchAugment([parse(f"RandomCrop(6, padding=3, padding_mode={mode!r}{extra})")], seed=0)
    out = aug(x, epoch=0, batch=0)
    padded = TF.pad(x, [3], fill=7 if extra else 0, padding_mode=mode)  # (16, 3, 12, 12)
    corners = set()
    for i in range(16):  # each output is the 6x6 window of torchvision's padded image at its offset
        windows = padded[i].unfold(1, 6, 1).unfold(2, 6, 1)  # (C, 7, 7, 6, 6)
        hits = [(r, c) for r in range(7) for c in range(7) if torch.equal(windows[:, r, c], out[i])]
        assert hits, i
        corners.update(hits)
    assert len(corners) > 4  # offsets vary per image


def test_reflect_padding_larger_than_the_image_is_an_error():
    aug = BatchAugment([parse("RandomCrop(4, padding=4, padding_mode='reflect')")], seed=0)
    with pytest.raises(UserError, match="padding 4 is too large for 4x4 images"):
        aug(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), epoch=0, batch=0)


def test_fast_and_fallback_paths_give_the_same_batches():
    g = torch.Generator().manual_seed(0)
    data = TensorData(torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(50) % 5)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.3, 0.25]
    fast = TensorBatches(data, 16, device=CPU, shuffle=True, seed=7, transform=Normalize(mean, std, 3, CPU))
    slow = LoaderBatches(data, 16, device=CPU, shuffle=True, seed=7, pipeline=per_sample_pipeline([], mean, std),
                         workers=0)
    for _ in range(2):
        for (xa, ya), (xb, yb) in zip(fast.epoch(), slow.epoch(), strict=True):
            assert torch.equal(ya, yb)
            assert torch.allclose(xa, xb, atol=1e-6)


@pytest.mark.parametrize("text,batched", [
    ("RandomCrop(32, padding=2)", True),
    ("RandomCrop(32, padding=2, padding_mode='reflect')", True),
    ("RandomCrop((28, 30))", True),
    ("RandomCrop(32, padding=[2, 4])", False),  # per-side padding: torchvision per sample
    ("RandomCrop(32, pad_if_needed=True)", False),
    ("RandomCrop(32, fill=(1, 2, 3))", False),
    ("RandomHorizontalFlip(p=0.3)", True),
    ("Normalize([0.5], [0.2])", True),
    ("ToTensor()", True),
    ("RandomVerticalFlip()", False),
])
def test_which_arguments_run_batched(text, batched):
    from trainlab.data.transforms import runs_batched

    assert runs_batched(parse(text)) is batched


def test_same_size_resize_and_crop_are_skipped():
    from trainlab.data.transforms import same_size

    assert same_size(parse("CenterCrop(32)"), 32, 32) and same_size(parse("Resize(32)"), 32, 48)
    assert same_size(parse("CenterCrop([32, 32])"), 32, 32)
    assert not same_size(parse("CenterCrop(28)"), 32, 32) and not same_size(parse("Resize(32, max_size=40)"), 32, 48)


def test_a_batched_pipeline_never_imports_torchvision():
    """torchvision costs seconds at start-up; a run whose transforms all run batched does without it."""
    import subprocess
    import sys

    code = ("import sys, torch\n"
            "from trainlab.data import TensorData\n"
            "from trainlab.data.plan import plan_batches\n"
            "d = TensorData(torch.zeros(8, 3, 32, 32, dtype=torch.uint8), torch.zeros(8, dtype=torch.int64))\n"
            "t, v = plan_batches(d, d, transforms=['RandomCrop(32, padding=2, padding_mode=\"reflect\")',\n"
            "    'RandomHorizontalFlip()'], mean=[0.5], std=[0.2], batch_size=4, eval_batch_size=4, seed=0,\n"
            "    drop_last=False, channels_last=False, workers=0, device=torch.device('cpu'))\n"
            "next(iter(t.epoch())), next(iter(v.epoch()))\n"
            "print('torchvision' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def flipped(images: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """(B,) True where an image is the mirror of its original (images are asymmetric)."""
    return (images == original.flip(3)).flatten(1).all(1)


def test_alternating_flip_flips_half_then_alternates():
    from trainlab.data.transforms import BatchAugment

    x = torch.arange(64 * 3 * 4 * 4, dtype=torch.float32).view(64, 3, 4, 4).to(torch.uint8)  # no image is symmetric
    augment, index = BatchAugment([parse("AlternatingFlip()")], seed=3), torch.arange(64)
    epochs = [flipped(augment(x, epoch, batch=0, index=index), x) for epoch in range(3)]
    assert 20 <= int(epochs[0].sum()) <= 44  # about half in the first epoch
    assert torch.equal(epochs[1], ~epochs[0]) and torch.equal(epochs[2], epochs[0])  # then every image alternates
    other_seed = flipped(BatchAugment([parse("AlternatingFlip()")], seed=4)(x, 0, 0, index), x)
    assert not torch.equal(other_seed, epochs[0])


def test_alternating_flip_follows_the_sample_on_every_rank():
    """Shuffled batches, 1 or 2 processes: each sample is flipped by its index and the epoch alone."""
    from trainlab.data.transforms import BatchAugment, sample_bits

    n = 40
    x = (torch.arange(n)[:, None, None, None] * 7 + torch.arange(8).view(1, 1, 1, 8)).to(torch.uint8)  # (n, 1, 1, 8)
    data = TensorData(x, torch.arange(n))  # the label is the sample's index
    for world in (1, 2):
        for rank in range(world):
            batches = TensorBatches(data, 8, device=torch.device("cpu"), shuffle=True, seed=5,
                                    augment=BatchAugment([parse("AlternatingFlip()")], seed=9), rank=rank, world=world)
            for epoch in range(2):
                for xb, yb in batches.epoch():
                    expected = sample_bits(yb, 9) != bool(epoch % 2)
                    assert torch.equal(flipped(xb, x[yb]), expected)


def test_alternating_flip_needs_the_batched_path():
    with pytest.raises(UserError, match="takes none"):
        parse("AlternatingFlip(0.5)")
    with pytest.raises(UserError, match="only the device-resident batches do"):
        per_sample_pipeline([parse("AlternatingFlip()")], [], [])
    assert eval_version([parse("AlternatingFlip()")]) == []
