"""Dataset sources on real data: CIFAR-10 (official layout), folders, Fashion-MNIST, downloads, cache."""
import gzip
import pickle
import struct
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainlab.data import build_dataset
from trainlab.data import download as dl
from trainlab.data.cifar import read_batch
from trainlab.data.folder import LabelledImages
from trainlab.errors import UserError


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path / "cache"))


def test_cifar10_official_layout_loads_the_shared_copy(data_dir):
    s = build_dataset("cifar10", data_dir=str(data_dir), download=False)
    assert s.train.x.shape == (50000, 3, 32, 32) and s.test.x.shape == (10000, 3, 32, 32)
    assert s.train.x.dtype == torch.uint8 and torch.bincount(s.test.y).tolist() == [1000] * 10
    assert s.classes[:2] == ["airplane", "automobile"]


def test_cifar_pickle_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(UserError, match=r"corrupt CIFAR-10 batch .*data_batch_1: refusing to load global builtins.print"):
        read_batch(path)


def write_cifar(folder: Path, n: int = 20, bad_shape: bool = False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3000 if bad_shape else 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": [i % 10 for i in range(n)]}, f, protocol=2)


def test_cifar_structure_errors_name_the_file(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py", bad_shape=True)
    with pytest.raises(UserError, match=r"data_batch_1: 'data' must be a uint8 array of shape \(N, 3072\)"):
        build_dataset("cifar10", data_dir=str(tmp_path), download=False, cache=False)


def test_cifar10_download_extracts_the_official_archive(tmp_path, monkeypatch):
    src = tmp_path / "src"
    write_cifar(src / "cifar-10-batches-py")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with tarfile.open(mirror / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    res = dl.Resource("cifar-10-python.tar.gz", dl.md5sum(mirror / "cifar-10-python.tar.gz"), "cifar-10-python.tar.gz")
    monkeypatch.setitem(dl.RESOURCES, "cifar10", [res])
    monkeypatch.setitem(dl.MIRRORS, "cifar10", ["http://127.0.0.1:9/"])
    s = build_dataset("cifar10", data_dir=str(tmp_path / "data"), mirror=mirror.as_uri() + "/")
    assert len(s.train) == 100 and len(s.test) == 20


def test_mnist_download_from_a_mirror_and_offline_failure(tmp_path, monkeypatch, data_dir):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    raw = data_dir / "MNIST" / "raw"
    resources = []
    for split, src in (("train", "train5k"), ("t10k", "t10k")):
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{split}-{kind}-ubyte.gz"
            (mirror / name).write_bytes((raw / f"{src}-{kind}-ubyte.gz").read_bytes())
            resources.append(dl.Resource(name, dl.md5sum(mirror / name), name))
    monkeypatch.setitem(dl.RESOURCES, "mnist", resources)
    monkeypatch.setitem(dl.MIRRORS, "mnist", ["http://127.0.0.1:9/"])  # the official one is unreachable here
    start = time.time()
    with pytest.raises(UserError, match=r"missing .*train-images-idx3-ubyte.gz.*TRAINLAB_MIRROR=URL"):
        build_dataset("mnist", data_dir=str(tmp_path / "offline"))
    assert time.time() - start < 10
    monkeypatch.setenv("TRAINLAB_MIRROR", mirror.as_uri() + "/")
    s = build_dataset("mnist", data_dir=str(tmp_path / "data"))
    assert len(s.train) == 5000 and len(s.test) == 10000


def test_fashion_mnist_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 6), ("t10k", 4)):
        images = struct.pack(">IIII", 0x803, n, 28, 28) + bytes(n * 784)
        labels = struct.pack(">II", 0x801, n) + bytes(range(n))
        (raw / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(labels)
    s = build_dataset("fashion-mnist", data_dir=str(tmp_path), download=False)
    assert len(s.train) == 6 and s.classes[0] == "T-shirt/top" and s.classes[9] == "Ankle boot"


def make_folder(root: Path, corrupt: bool = False) -> Path:
    rng = np.random.default_rng(1)
    modes = {"RGB": 3, "L": 1, "RGBA": 4}
    for label in ("zebra", "ant", "bee"):
        (root / label).mkdir(parents=True)
        for i in range(6):
            mode = list(modes)[i % 3]
            shape = (20 + i, 30, modes[mode]) if modes[mode] > 1 else (20 + i, 30)
            img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
            img = img.convert("P") if i == 5 else img
            img.save(root / label / f"{i}.{'png' if mode != 'RGB' else 'jpg'}")
    (root / "ant" / "notes.txt").write_text("not an image")
    if corrupt:
        (root / "bee" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return root


def test_image_folder_split_by_fraction(tmp_path, capsys):
    root = make_folder(tmp_path / "imgs")
    s = build_dataset("folder", data_path=str(root), image_size=16, test_fraction=0.5, seed=3)
    assert s.classes == ["ant", "bee", "zebra"]
    assert s.train.x.shape == (9, 3, 16, 16) and len(s.test) == 9
    assert torch.bincount(s.test.y).tolist() == [3, 3, 3]
    assert "skipped 1 non-image file(s)" in capsys.readouterr().err


def test_image_folder_with_split_folders_and_bad_image(tmp_path):
    make_folder(tmp_path / "d" / "train")
    make_folder(tmp_path / "d" / "val")
    s = build_dataset("folder", data_path=str(tmp_path / "d"), image_size=8)
    assert len(s.train) == 18 and len(s.test) == 18
    bad = make_folder(tmp_path / "bad", corrupt=True)
    with pytest.raises(UserError, match=r"cannot read image .*bee/broken.jpg"):
        build_dataset("folder", data_path=str(bad), image_size=8)


def test_cache_is_reused_rebuilt_on_change_and_when_corrupt(tmp_path, monkeypatch, capsys):
    root = make_folder(tmp_path / "imgs")
    a = build_dataset("folder", data_path=str(root), image_size=8)
    entries = list((tmp_path / "cache").glob("folder-*.pt"))
    assert len(entries) == 1
    import trainlab.data.folder as folder_mod

    def no_decoding(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(folder_mod, "decode_all", no_decoding)
    b = build_dataset("folder", data_path=str(root), image_size=8)  # from the cache
    assert torch.equal(a.train.x, b.train.x)
    monkeypatch.undo()
    monkeypatch.setenv("TRAINLAB_CACHE", str(tmp_path / "cache"))
    entries[0].write_bytes(b"torn")
    c = build_dataset("folder", data_path=str(root), image_size=8)
    assert torch.equal(a.train.x, c.train.x) and "rebuilding unreadable cache entry" in capsys.readouterr().err
    Image.new("RGB", (9, 9), "red").save(root / "ant" / "0.jpg")  # a changed source: a new key
    build_dataset("folder", data_path=str(root), image_size=8)
    assert len(list((tmp_path / "cache").glob("folder-*.pt"))) == 2


def test_labelled_images_concat_like_the_notes(data_dir):
    root = data_dir / "hymenoptera_data" / "train"
    ants, bees = LabelledImages(root, "ants"), LabelledImages(root, "bees")
    both = ants + bees
    assert len(both) == len(ants) + len(bees) == 245
    x, y = bees[1]
    assert x.dtype == torch.uint8 and x.shape[0] == 3 and y == 1 and ants[0][1] == 0


def test_tables_are_cached_too(tmp_path, monkeypatch):
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n" + "\n".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}" for i in range(40)) + "\n")
    first = build_dataset("table", data_path=str(csv), target="label")
    import trainlab.data.table as table_mod

    monkeypatch.setattr(table_mod, "table_splits", lambda *a, **k: (_ for _ in ()).throw(AssertionError("parsed again")))
    again = build_dataset("table", data_path=str(csv), target="label")
    assert torch.equal(first.train.x, again.train.x) and again.classes == ["no", "yes"]
    assert again.info["table"]["target"] == "label"
    with pytest.raises(UserError, match=r"missing data file: .*nope.csv"):
        build_dataset("table", data_path=str(tmp_path / "nope.csv"))


def test_local_cifar_archive_without_the_batches_names_what_is_missing(tmp_path):
    src = tmp_path / "src" / "cifar-10-batches-py"
    src.mkdir(parents=True)
    (src / "readme.html").write_text("not the batches")
    data = tmp_path / "data"
    data.mkdir()
    with tarfile.open(data / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    with pytest.raises(UserError, match=r"cifar-10-python.tar.gz does not hold the CIFAR-10 python batches: .*"
                                        r"lacks data_batch_1, .*test_batch"):
        build_dataset("cifar10", data_dir=str(data), download=False)


def test_cache_key_of_a_missing_source_is_a_user_error(tmp_path):
    from trainlab.data.cache import key

    with pytest.raises(UserError, match=r"missing data file: .*gone.bin"):
        key("x", [tmp_path / "gone.bin"], {})
