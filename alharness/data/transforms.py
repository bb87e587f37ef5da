"""Per-item image transforms on uint8 (C, H, W) tensors.

Plain torch ops rather than ``torchvision.transforms.v2``: they compute the same thing
(bilinear antialiased resize, zero-padded random crop, horizontal flip, per-channel
normalisation) about ten times faster per item, which matters because inference over
a 50,000-image pool transforms every image once per cycle. Randomness comes from
torch's global generator, which the trainer seeds (and DataLoader workers derive from).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


class ImageTransform:
    """uint8 (C, H, W) → float32 (C, size, size), normalised by ``(x/255 − mean) / std``.

    ``size`` resizes (bilinear, antialiased) when it differs from the stored size.
    ``crop_padding > 0`` takes a random ``size×size`` crop of the zero-padded image and
    ``flip`` mirrors half the images: the standard CIFAR augmentation, for training only.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], size: int | None = None,
                 crop_padding: int = 0, flip: bool = False) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.size, self.crop_padding, self.flip = size, crop_padding, flip

    @property
    def augments(self) -> bool:
        return self.crop_padding > 0 or self.flip

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32) / 255.0
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = F.interpolate(x[None], size=(self.size, self.size), mode="bilinear",
                              antialias=True, align_corners=False)[0]
        if self.crop_padding:
            p = self.crop_padding
            h, w = x.shape[-2:]
            padded = F.pad(x, (p, p, p, p))
            top, left = torch.randint(0, 2 * p + 1, (2,)).tolist()
            x = padded[:, top:top + h, left:left + w]
        if self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return (x - self.mean) / self.std
