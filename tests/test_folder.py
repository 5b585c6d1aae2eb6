"""Image folders: one class refused, decompression bombs refused per file in training and predict."""
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

import trainlab
from trainlab.data import build_dataset
from trainlab.data.folder import decode
from trainlab.data.images import MAX_PIXELS, ImageTooLarge
from trainlab.errors import UserError


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height grey pixels; the data are a few compressed zeros (a
    real bomb decompresses them to the full size; the limit refuses it from the header alone)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
                     + chunk(b"IEND", b""))
    return path


def images(root: Path, classes=("ant", "bee"), n: int = 6) -> Path:
    for c, colour in zip(classes, ("red", "blue")):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (10 + i, 12), colour).save(root / c / f"{i}.png")
    return root


def test_bombs_are_refused_by_name_at_every_size(tmp_path):
    assert MAX_PIXELS == 40_000_000
    for side in (30000, 12000, 7000):  # PIL's DecompressionBombError, its Warning, and our own limit
        path = bomb_png(tmp_path / f"b{side}.png", side, side)
        with pytest.raises(ImageTooLarge, match=rf"image .*b{side}\.png is too large|b{side}\.png is {side}x{side}"):
            decode(path, 8)


def test_training_skips_bombs_and_refuses_one_class(tmp_path, capsys):
    root = images(tmp_path / "imgs")
    bomb_png(root / "bee" / "zz-bomb.png", 30000, 30000)
    s = build_dataset("folder", data_path=str(root), image_size=8, cache=False)
    assert len(s.train) + len(s.test) == 12 and s.train.y.bincount().tolist() == [5, 5]
    err = capsys.readouterr().err
    assert "skipped: image" in err and "zz-bomb.png" in err
    one = images(tmp_path / "one", classes=("cat",))
    with pytest.raises(UserError, match=r"one has a single label folder 'cat': a classifier needs at least two"):
        build_dataset("folder", data_path=str(one), image_size=8, cache=False)


def test_predict_reports_the_bomb_and_predicts_the_others(tmp_path):
    root = images(tmp_path / "imgs")
    run = trainlab.train("image-folder", data_path=str(root), image_size=64, epochs=1, out_dir=str(tmp_path / "runs"),
                         threads=1, tensorboard=False, plots=False).run_dir
    bomb = bomb_png(tmp_path / "bomb.png", 30000, 30000)
    good, bad, other = trainlab.load(run).predict([root / "ant" / "0.png", bomb, root / "bee" / "1.png"])
    assert good.top and other.top and not good.error
    assert "bomb.png" in bad.error and "too large" in bad.error
