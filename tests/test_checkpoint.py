"""Checkpoints: atomic writes that never lose the previous file, weights_only reads."""
import pytest
import torch

from trainlab import checkpoint
from trainlab.errors import UserError


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save({"model": {}, "config": {}, "v": 1}, path)

    def full(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 768 vs 662")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UserError, match=r"cannot write checkpoint .*last.pt: .*the previous file is intact"):
        checkpoint.save({"model": {}, "config": {}, "v": 2}, path)
    monkeypatch.undo()
    assert checkpoint.load(path)["v"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]
