"""Transforms from config: torchvision (v2) transforms named as strings, e.g. "RandomCrop(32, padding=4)".

A pipeline is split in two. Deterministic resizing (Resize, CenterCrop) runs once, when images
are decoded and cached. The rest runs on whole batches on the training device when every step has
a batched version here (RandomCrop with padding, RandomHorizontalFlip, Normalize, ToTensor/ToImage);
otherwise the engine falls back to a DataLoader that applies the torchvision pipeline per sample.
Specs are parsed with `ast` into a name and literal arguments: nothing is evaluated.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import UserError

SUPPORTED = ("ToTensor", "ToImage", "Normalize", "Resize", "CenterCrop", "RandomCrop", "RandomHorizontalFlip",
             "RandomVerticalFlip", "RandomResizedCrop", "ColorJitter", "RandomRotation", "Grayscale", "AlternatingFlip")
DECODE = ("Resize", "CenterCrop")  # deterministic, applied once when images are decoded
BATCHED = ("ToTensor", "ToImage", "Normalize", "RandomCrop", "RandomHorizontalFlip", "AlternatingFlip")
RANDOM = ("RandomCrop", "RandomHorizontalFlip", "AlternatingFlip", "RandomVerticalFlip", "RandomResizedCrop", "ColorJitter",
          "RandomRotation")


@dataclass(frozen=True)
class Spec:
    name: str
    args: tuple
    kwargs: tuple  # ((key, value), ...) so that Spec is hashable

    def __str__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs]
        return f"{self.name}({', '.join(parts)})"


def parse(text: str) -> Spec:
    """'RandomCrop(32, padding=4)' -> Spec('RandomCrop', (32,), (('padding', 4),))."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
        if isinstance(node, ast.Name):
            node = ast.Call(func=node, args=[], keywords=[])
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            raise ValueError("expected Name(args)")
        args = tuple(ast.literal_eval(a) for a in node.args)
        kwargs = tuple((k.arg, ast.literal_eval(k.value)) for k in node.keywords)
    except (SyntaxError, ValueError) as e:
        raise UserError(f"cannot read transform '{text}' ({e}); write e.g. RandomCrop(32, padding=4)") from e
    if node.func.id not in SUPPORTED:
        raise UserError(f"unknown transform '{node.func.id}'; supported: {', '.join(SUPPORTED)}")
    spec = Spec(node.func.id, args, kwargs)
    if not runs_batched(spec):
        build_one(spec)  # bad arguments fail here, with the transform named
    return spec


def build_one(spec: Spec):
    """The torchvision v2 transform for one spec (ToTensor = ToImage + ToDtype(float32, scale))."""
    from torchvision.transforms import v2

    if spec.name == "AlternatingFlip" and (spec.args or spec.kwargs):
        raise UserError(f"bad arguments for transform {spec}: AlternatingFlip() takes none")
    if spec.name == "AlternatingFlip":
        raise UserError("AlternatingFlip() follows each sample across epochs, which only the device-resident "
                        "batches do (a tensor dataset whose other transforms all run batched); use "
                        "RandomHorizontalFlip() here")
    if spec.name == "ToTensor":
        return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    try:
        return getattr(v2, spec.name)(*spec.args, **dict(spec.kwargs))
    except (TypeError, ValueError) as e:
        raise UserError(f"bad arguments for transform {spec}: {e}") from e


def parse_all(texts: list[str]) -> list[Spec]:
    return [parse(t) for t in texts]


def eval_version(specs: list[Spec]) -> list[Spec]:
    """The deterministic pipeline for evaluation: random crops become centre crops, other random steps go."""
    out = []
    for s in specs:
        kw = dict(s.kwargs)
        size = s.args[0] if s.args else kw.get("size")
        if s.name == "RandomCrop":
            out.append(Spec("CenterCrop", (size,), ()))
        elif s.name == "RandomResizedCrop":
            out += [Spec("Resize", (size,), ()), Spec("CenterCrop", (size,), ())]
        elif s.name not in RANDOM:
            out.append(s)
    return out


def decode_size(specs: list[Spec]) -> tuple[list[Spec], list[Spec]]:
    """Split off the leading deterministic Resize/CenterCrop steps (applied at decode time)."""
    i = 0
    while i < len(specs) and specs[i].name in DECODE:
        i += 1
    return specs[:i], specs[i:]


def batchable(specs: list[Spec]) -> bool:
    return all(runs_batched(s) for s in specs)


# torchvision v2's signatures of the steps that run batched, with the arguments the batched versions
# support. Checking them here means a run whose pipeline is all batched never imports torchvision,
# which takes 2-4 s at start-up (as long as a whole cifar10-fast training on a GPU).
def _no_arguments() -> bool:
    return True


def _normalize(mean, std, inplace=False) -> bool:
    return all(isinstance(v, (int, float)) for v in [*mean, *std]) and len(mean) == len(std) and not inplace


def _random_crop(size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant") -> bool:
    sizes = [size] if isinstance(size, int) else list(size) if isinstance(size, (list, tuple)) else [None]
    return (len(sizes) in (1, 2) and all(isinstance(v, int) and v > 0 for v in sizes)
            and (padding is None or isinstance(padding, int) and padding >= 0) and not pad_if_needed
            and isinstance(fill, (int, float)) and padding_mode in ("constant", "edge", "reflect", "symmetric"))


def _horizontal_flip(p=0.5) -> bool:
    return isinstance(p, (int, float)) and 0 <= p <= 1


BATCHED_ARGUMENTS = {"ToTensor": _no_arguments, "ToImage": _no_arguments, "Normalize": _normalize,
                     "RandomCrop": _random_crop, "RandomHorizontalFlip": _horizontal_flip,
                     "AlternatingFlip": _no_arguments}
assert set(BATCHED_ARGUMENTS) == set(BATCHED)


def runs_batched(spec: Spec) -> bool:
    """True when the batched version takes these arguments (otherwise torchvision runs it per sample)."""
    try:
        return spec.name in BATCHED_ARGUMENTS and bool(BATCHED_ARGUMENTS[spec.name](*spec.args, **dict(spec.kwargs)))
    except TypeError:  # arguments that do not fit the signature: torchvision names the problem
        return False


def same_size(spec: Spec, height: int, width: int) -> bool:
    """A Resize or CenterCrop to the size the images already have: nothing to do (and no torchvision
    import), e.g. the CenterCrop(32) that evaluation makes of RandomCrop(32, padding=2)."""
    kw = dict(spec.kwargs)
    size = spec.args[0] if spec.args else kw.get("size")
    if spec.name not in DECODE or len(spec.args) > 1 or set(kw) - {"size", "antialias", "interpolation"}:
        return False
    if isinstance(size, (list, tuple)) and len(size) in (1, 2):
        return (height, width) == (size[0], size[-1])
    if spec.name == "Resize":
        return isinstance(size, int) and min(height, width) == size
    return isinstance(size, int) and height == width == size


def per_sample_pipeline(specs: list[Spec], mean: list[float], std: list[float]):
    """A torchvision pipeline for one uint8 (C, H, W) image -> float32, normalised last."""
    from torchvision.transforms import v2

    mean, std = normalize_args(specs, mean, std)
    steps = [build_one(s) for s in specs if s.name not in ("ToTensor", "ToImage", "Normalize")]
    steps = [v2.ToImage(), *steps, v2.ToDtype(torch.float32, scale=True)]
    if mean:
        steps.append(v2.Normalize(mean, std))
    return v2.Compose(steps)


def normalize_args(specs: list[Spec], mean: list[float], std: list[float]) -> tuple[list[float], list[float]]:
    """mean/std from a Normalize(...) in the pipeline, else from the config keys."""
    for s in specs:
        if s.name == "Normalize":
            kw = dict(s.kwargs)
            values = list(s.args) + [kw.get("mean"), kw.get("std")]
            return list(values[0]), list(values[1])
    return mean, std


class BatchAugment:
    """Random crop (padded as torchvision pads: constant `fill`, edge, reflect or symmetric) and
    horizontal flip of whole uint8 (B, C, H, W) batches.

    Randomness comes from a CPU generator seeded per batch from (seed, epoch, batch index), so a
    resumed run draws exactly what the uninterrupted run drew. AlternatingFlip (airbench's
    derandomised flip) needs no generator: sample i is flipped in epoch e when bit(seed, i) differs
    from e's parity, so half the images are flipped in the first epoch and each image alternates
    after that; it depends on the sample, not the batch, so any number of processes flip alike.
    """

    def __init__(self, specs: list[Spec], seed: int):
        self.crop = self.flip = None
        self.alternate = False
        for s in specs:
            kw = dict(s.kwargs)
            if s.name == "RandomCrop":
                size = s.args[0] if s.args else kw["size"]
                self.crop = ((size, size) if isinstance(size, int) else tuple(size), kw.get("padding", 0) or 0,
                             kw.get("padding_mode", "constant"), kw.get("fill", 0))
            elif s.name == "RandomHorizontalFlip":
                self.flip = s.args[0] if s.args else kw.get("p", 0.5)
            elif s.name == "AlternatingFlip":
                self.alternate = True
        self.seed = seed
        self.generator = torch.Generator()

    def __call__(self, x: torch.Tensor, epoch: int, batch: int, index: torch.Tensor | None = None) -> torch.Tensor:
        """`index` (B,): the samples' positions in the dataset, which AlternatingFlip needs."""
        if self.crop is None and self.flip is None and not self.alternate:
            return x
        self.generator.manual_seed(hash((self.seed, epoch, batch)) & (2**63 - 1))
        b = x.shape[0]
        if self.crop is not None:
            x = random_crop(x, *self.crop, self.generator)
        if self.flip is not None:
            mask = (torch.rand(b, generator=self.generator) < self.flip).to(x.device).view(b, 1, 1, 1)
            x = torch.where(mask, x.flip(3), x)
        if self.alternate:
            if index is None:
                raise ValueError("AlternatingFlip needs the samples' dataset indices")
            mask = (sample_bits(index.to(x.device), self.seed) != epoch % 2).view(b, 1, 1, 1)
            x = torch.where(mask, x.flip(3), x)
        return x


def sample_bits(index: torch.Tensor, seed: int) -> torch.Tensor:
    """A fixed pseudo-random bit per sample index (B,) for `seed`: the top bit of a 32-bit
    multiplicative (Knuth) hash, computed on the indices' device. Written here because torch has no
    counter-based random function of an index; a table of n bits would need the dataset size."""
    mixed = (index.long() + (seed % 2**31) * 40503) * 2654435761 % 2**32
    return mixed >= 2**31


def random_crop(x: torch.Tensor, size: tuple[int, int], padding: int, mode: str, fill: int,
                generator: torch.Generator) -> torch.Tensor:
    """A different random (h, w) window per image of x padded by `padding` on all sides: with the
    constant `fill`, or (edge, reflect, symmetric) by reading the window's pixels from the image
    itself, which pads nothing."""
    b, c, height, width = x.shape
    h, w = size
    max_y, max_x = height + 2 * padding - h, width + 2 * padding - w
    if max_y < 0 or max_x < 0:
        raise UserError(f"RandomCrop{size} is larger than the {height}x{width} images (padding {padding})")
    if mode in ("reflect", "symmetric") and padding > min(height, width) - (mode == "reflect"):
        raise UserError(f"RandomCrop padding_mode={mode!r}: padding {padding} is too large for {height}x{width} images")
    oy = torch.randint(0, max_y + 1, (b,), generator=generator).to(x.device)
    ox = torch.randint(0, max_x + 1, (b,), generator=generator).to(x.device)
    rows = oy[:, None] + torch.arange(h, device=x.device)  # (B, h) in padded coordinates
    cols = ox[:, None] + torch.arange(w, device=x.device)  # (B, w)
    if mode == "constant":
        if padding:
            x = F.pad(x, (padding, padding, padding, padding), value=fill)
    else:
        rows, cols = source_index(rows - padding, height, mode), source_index(cols - padding, width, mode)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return x[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, h, w)


def source_index(i: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Pixel indices outside [0, n) mapped into the image as torchvision's padding modes do:
    edge repeats the border pixel, reflect mirrors around it (without repeating it), symmetric
    mirrors including it."""
    if mode == "edge":
        return i.clamp(0, n - 1)
    if mode == "reflect":
        return torch.where(i < 0, -i, torch.where(i >= n, 2 * (n - 1) - i, i))
    if mode == "symmetric":
        return torch.where(i < 0, -i - 1, torch.where(i >= n, 2 * n - 1 - i, i))
    raise UserError(f"RandomCrop padding_mode={mode!r}: allowed values are constant, edge, reflect, symmetric")
