import gzip
import struct

import pytest
import torch

from trainlab.data import build_dataset, stratified_split
from trainlab.data.batches import Normalize, TensorBatches
from trainlab.data import TensorData
from trainlab.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, read_pair
from trainlab.errors import UserError


def write_idx(path, magic, array: bytes, dims):
    header = struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims)
    data = header + array
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def test_bundled_mnist_sample_loads():
    s = build_dataset("mnist-sample")
    assert s.train.x.shape == (5000, 1, 28, 28) and s.train.x.dtype == torch.uint8
    assert s.test.x.shape == (10000, 1, 28, 28)
    assert torch.bincount(s.train.y).tolist() == [500] * 10
    assert s.classes == [str(i) for i in range(10)]


def test_official_layout_reads_plain_and_gz(tmp_path, data_dir):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    src = data_dir / "MNIST" / "raw"
    for kind in ("images-idx3", "labels-idx1"):  # the 5k subset under the official train names
        (raw / f"train-{kind}-ubyte.gz").write_bytes((src / f"train5k-{kind}-ubyte.gz").read_bytes())
        (raw / f"t10k-{kind}-ubyte").write_bytes(gzip.decompress((src / f"t10k-{kind}-ubyte.gz").read_bytes()))
    s = build_dataset("mnist", data_dir=str(tmp_path))
    assert len(s.train) == 5000 and len(s.test) == 10000


def test_wrong_magic_names_file(tmp_path):
    p = tmp_path / "x-images-idx3-ubyte.gz"
    write_idx(p, LABELS_MAGIC, bytes(4), (4,))
    with pytest.raises(UserError, match=r"x-images-idx3-ubyte.gz: wrong magic number 0x00000801, expected 0x00000803"):
        read_idx(p, IMAGES_MAGIC)


def test_truncated_gzip_names_file(tmp_path):
    p = tmp_path / "t.gz"
    p.write_bytes(gzip.compress(bytes(range(256)) * 40)[:100])
    with pytest.raises(UserError, match=r"corrupt or truncated file .*t.gz"):
        read_idx(p, IMAGES_MAGIC)


def test_size_mismatch_and_missing_file(tmp_path):
    p = tmp_path / "s-images-idx3-ubyte"
    write_idx(p, IMAGES_MAGIC, bytes(2 * 28 * 28 - 1), (2, 28, 28))
    with pytest.raises(UserError, match=r"header says \(2, 28, 28\)"):
        read_idx(p, IMAGES_MAGIC)
    with pytest.raises(UserError, match=r"missing .*nowhere/MNIST/raw/train-images-idx3-ubyte.gz .*download=true"):
        build_dataset("mnist", data_dir=str(tmp_path / "nowhere"), download=False)


def test_label_range_and_count_checked(tmp_path):
    write_idx(tmp_path / "a-images-idx3-ubyte", IMAGES_MAGIC, bytes(2 * 4), (2, 2, 2))
    write_idx(tmp_path / "a-labels-idx1-ubyte", LABELS_MAGIC, bytes([0, 12]), (2,))
    with pytest.raises(UserError, match=r"labels must be in 0..9"):
        read_pair(tmp_path, "a")
    write_idx(tmp_path / "a-labels-idx1-ubyte", LABELS_MAGIC, bytes([0, 1, 2]), (3,))
    with pytest.raises(UserError, match=r"has 2 images but .* has 3 labels"):
        read_pair(tmp_path, "a")


def test_diabetes_table_split(data_dir):
    s = build_dataset("diabetes", data_dir=str(data_dir), test_fraction=0.2, seed=0)
    assert len(s.train) + len(s.test) == 759 and s.train.x.shape[1] == 8
    assert abs(len(s.test) - 152) <= 2 and s.train.x.dtype == torch.float32


def test_stratified_split_is_seeded_and_keeps_shares():
    y = torch.tensor([0] * 80 + [1] * 20)
    a, b = stratified_split(y, 0.25, seed=1)
    assert torch.equal(torch.sort(torch.cat([a, b])).values, torch.arange(100))
    assert (y[b] == 1).sum() == 5 and (y[b] == 0).sum() == 20
    assert torch.equal(b, stratified_split(y, 0.25, seed=1)[1])


def test_batches_cover_data_once_and_resume_mid_epoch():
    x = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    data = TensorData(x, torch.arange(10))
    a = TensorBatches(data, 3, device=torch.device("cpu"), shuffle=True, seed=5)
    first = [yb.tolist() for _, yb in a.epoch()]
    assert sorted(sum(first, [])) == list(range(10)) and len(first) == len(a) == 4
    it = a.epoch()
    expected = [yb.tolist() for _, yb in it]
    b = TensorBatches(data, 3, device=torch.device("cpu"), shuffle=True, seed=5)
    list(b.epoch())
    it = b.epoch()
    next(it)
    state = b.state_dict()  # taken after one batch of the second epoch
    c = TensorBatches(data, 3, device=torch.device("cpu"), shuffle=True, seed=99)
    c.load_state_dict(state)
    assert [yb.tolist() for _, yb in c.epoch()] == expected[1:]


def test_normalize_matches_torchvision():
    from torchvision.transforms.v2 import functional as F

    x = torch.randint(0, 256, (4, 3, 5, 5), dtype=torch.uint8)
    ours = Normalize([0.4, 0.5, 0.6], [0.2, 0.25, 0.3], 3, torch.device("cpu"))(x)
    ref = torch.stack([F.normalize(F.to_dtype(i, torch.float32, scale=True), [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]) for i in x])
    assert torch.allclose(ours, ref, atol=1e-5)
    with pytest.raises(UserError, match="mean/std need 1 or 3 values"):
        Normalize([0.1, 0.2], [0.3, 0.4], 3, torch.device("cpu"))
