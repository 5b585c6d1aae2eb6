"""Batch planning: which path serves the data and which transforms evaluation gets."""
import torch

from trainlab.data import TensorData
from trainlab.data.plan import plan_batches
from trainlab.data.transforms import parse, per_sample_pipeline


def test_deterministic_eval_transforms_match_per_sample(tmp_path):
    g = torch.Generator().manual_seed(0)
    data = TensorData(torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8, generator=g), torch.arange(6) % 2)
    _, val = plan_batches(data, data, transforms=["Grayscale(3)"], mean=[0.5] * 3, std=[0.5] * 3, batch_size=6,
                          eval_batch_size=6, seed=0, drop_last=False, channels_last=False, workers=0,
                          device=torch.device("cpu"))
    xb, _ = next(iter(val.epoch()))
    ref = torch.stack([per_sample_pipeline([parse("Grayscale(3)")], [0.5] * 3, [0.5] * 3)(img) for img in data.x])
    assert torch.allclose(xb, ref, atol=1e-6) and torch.allclose(xb[:, 0], xb[:, 1])
