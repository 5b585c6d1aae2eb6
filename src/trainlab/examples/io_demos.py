"""Notes 000/003/004 on the edges of training: torchvision transforms on a real image, the two
ways of saving a model, and writing TensorBoard logs (scalars, images, an image batch, a graph).

torch, torchvision, numpy, PIL, TensorBoard and the models/data registries are imported inside the
functions, so that registering (listing) the examples does not load them.
"""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from . import register_example
from ._util import seeded

if TYPE_CHECKING:
    import torch
    from PIL import Image


def synthetic_image(width: int = 800, height: int = 600) -> Image.Image:
    """A deterministic RGB picture (colour ramps and rings) for machines without the ants images;
    landscape, so that Resize(512) visibly keeps the aspect ratio."""
    import numpy as np
    from PIL import Image

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rings = 0.5 + 0.5 * np.sin(np.hypot(xx - width / 2, yy - height / 2) / 12.0)
    rgb = np.stack([xx / (width - 1), yy / (height - 1), rings], axis=-1)
    return Image.fromarray((rgb * 255).round().astype(np.uint8), mode="RGB")


def demo_image() -> tuple[Image.Image, str]:
    """The first ants image of hymenoptera_data (as in the notes), else the synthetic picture."""
    from PIL import Image

    from ..data import default_data_dir

    ants = default_data_dir() / "hymenoptera_data" / "train" / "ants"
    files = sorted(ants.glob("*.jpg")) if ants.is_dir() else []
    if files:
        with Image.open(files[0]) as img:
            return img.convert("RGB"), str(files[0])
    return synthetic_image(), "synthetic 800x600 image"


def tensor_conversions(img: Image.Image) -> dict:
    """ToTensor (HWC uint8 -> CHW float in [0, 1]), back with ToPILImage, and Normalize."""
    import numpy as np
    import torch
    from torchvision import transforms

    img_tensor = transforms.ToTensor()(img)
    back = transforms.ToPILImage()(img_tensor)
    roundtrip = np.array_equal(np.array(back), np.array(img)) and torch.equal(transforms.ToTensor()(back), img_tensor)
    img_norm = transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])(img_tensor)
    print(f"ToTensor: {tuple(img_tensor.shape)}, values in [{img_tensor.min():.4f}, {img_tensor.max():.4f}]")
    print(f"ToPILImage round trip gives the same pixels: {roundtrip}")
    # (v - 0.5) / 0.5 = 2v - 1: the notes' pixel 0.6039 becomes 0.2078.
    print(f"Normalize(0.5, 0.5): {img_tensor[0][0][0]:.4f} -> {img_norm[0][0][0]:.4f}")
    return {
        "tensor_shape": tuple(img_tensor.shape),
        "tensor_min": img_tensor.min().item(), "tensor_max": img_tensor.max().item(),
        "roundtrip_equal": roundtrip,
        "normalize_is_2v_minus_1": torch.allclose(img_norm, 2 * img_tensor - 1, atol=1e-6),
        "normalized_range": (img_norm.min().item(), img_norm.max().item()),
    }


def resizes_and_crops(img: Image.Image) -> dict:
    from torchvision import transforms

    to_tensor = transforms.ToTensor()
    pair = to_tensor(transforms.Resize((512, 512))(img))
    # Compose chains transforms; Resize(512) scales the shorter side to 512 and keeps the aspect.
    shorter = transforms.Compose([transforms.Resize(512), to_tensor])(img)
    # The notes crop their 940x940 picture; ants images can be smaller than 512, so the crops are
    # taken after Resize(512), where a 512x512 window always fits.
    crop = transforms.Compose([transforms.Resize(512), transforms.RandomCrop(512), to_tensor])
    with seeded(0):
        crops = [crop(img) for _ in range(10)]
    print(f"Resize((512, 512)): {tuple(pair.shape)}; Resize(512): {tuple(shorter.shape)} "
          f"(from {img.size[0]}x{img.size[1]} W x H)")
    print(f"RandomCrop(512) x10: {tuple(crops[0].shape)} each, "
          f"{len({c.numpy().tobytes() for c in crops})} distinct crops")
    return {"resize_pair_shape": tuple(pair.shape), "resize_int_shape": tuple(shorter.shape),
            "crop_shapes": [tuple(c.shape) for c in crops]}


@register_example("transforms-demo", "003/004: ToTensor, ToPILImage, Normalize, Resize, RandomCrop, Compose")
def transforms_demo(out_dir: Path) -> dict:
    img, source = demo_image()
    print(f"image: {source} ({img.size[0]}x{img.size[1]}, {img.mode})")
    return {"source": source, "size": img.size, **tensor_conversions(img), **resizes_and_crops(img)}


@register_example("save-load", "000/004: torch.save(model) vs torch.save(state_dict) (recommended)")
def save_load(out_dir: Path) -> dict:
    import torch

    from ..models import build_model

    with seeded(0):
        model = build_model("cifar10-quick").eval()
        fresh = build_model("cifar10-quick").eval()  # other random weights until loaded
        x = torch.randn(4, 3, 32, 32)
    whole_path, weights_path = out_dir / "model_whole.pth", out_dir / "model_state_dict.pth"
    torch.save(model, whole_path)  # method 1: pickles the module object itself
    torch.save(model.state_dict(), weights_path)  # method 2: only the tensors
    try:
        torch.load(whole_path, weights_only=True)
        needs_unpickling = False
    except pickle.UnpicklingError:
        needs_unpickling = True
    print(f"torch.load(whole model, weights_only=True) refused: {needs_unpickling}; "
          "it loads only with weights_only=False")
    print("WARNING: weights_only=False unpickles the file, and unpickling can execute arbitrary "
          "code; the pickle also records the model's class by import path, so it breaks once the "
          "class is moved or changed. Save model.state_dict() instead and load it into a freshly "
          "built model with weights_only=True.")
    whole = torch.load(whole_path, weights_only=False)
    with torch.no_grad():
        differs_before = not torch.equal(fresh(x), model(x))
        fresh.load_state_dict(torch.load(weights_path, weights_only=True))
        same_state = torch.equal(fresh(x), model(x))
        same_whole = torch.equal(whole(x), model(x))
    print(f"state_dict into a fresh model: identical outputs {same_state} (different before "
          f"loading: {differs_before}); whole model: identical outputs {same_whole}")
    return {"whole_needs_unpickling": needs_unpickling, "state_dict_identical": same_state,
            "whole_identical": same_whole, "fresh_differs_before_load": differs_before,
            "whole_path": whole_path, "state_dict_path": weights_path}


def image_batch(img: Image.Image, size: int = 64, count: int = 8) -> torch.Tensor:
    """(count, 3, size, size): random crops of the picture, standing in for a DataLoader batch."""
    import torch
    from torchvision import transforms

    crop = transforms.Compose([transforms.Resize(size * 2), transforms.RandomCrop(size), transforms.ToTensor()])
    with seeded(0):
        return torch.stack([crop(img) for _ in range(count)])


@register_example("tensorboard-demo", "000-004: add_scalar, add_image (CHW, HWC), add_images, add_graph")
def tensorboard_demo(out_dir: Path) -> dict:
    import numpy as np
    import torch
    from torch.utils.tensorboard import SummaryWriter
    from torchvision import transforms

    from ..models import build_model

    log_dir = out_dir / "tb"
    before = set(log_dir.glob("events.out.tfevents.*"))
    img, _ = demo_image()
    writer = SummaryWriter(str(log_dir))
    for i in range(100):
        writer.add_scalar("y=x^2", i ** 2, i)  # tag, y value, x (the step)
    writer.add_image("ToTensor", transforms.ToTensor()(img), 0)  # CHW float, add_image's default
    # A numpy picture is H x W x C: without dataformats='HWC' add_image would misread its axes.
    writer.add_image("test", np.array(img), 0, dataformats="HWC")
    writer.add_images("input", image_batch(img), 0)
    with warnings.catch_warnings():
        # add_graph traces with torch.jit, which newer PyTorch flags as deprecated; the graph is
        # still written, and the warning would only confuse readers of the example's output.
        warnings.simplefilter("ignore", FutureWarning)
        writer.add_graph(build_model("cifar10-quick"), torch.ones(1, 3, 32, 32))
    writer.close()
    events = sorted(set(log_dir.glob("events.out.tfevents.*")) - before)
    print(f"wrote scalar 'y=x^2', images 'ToTensor', 'test', 'input' and the model graph to {log_dir}")
    print(f"view them with: tensorboard --logdir {log_dir}")
    return {"log_dir": log_dir, "event_files": events,
            "scalar_tags": ["y=x^2"], "image_tags": ["ToTensor", "test", "input"]}
