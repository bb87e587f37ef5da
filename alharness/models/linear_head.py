"""A fixed linear classifier over given embeddings: the model behind synthetic pools in
benchmarks and tests, so strategies that need ``model.head`` run without training."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class LinearHead(nn.Module):
    """``head(z) = z @ W.T + b`` with dropout before it (so MC dropout works too)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, dropout: float = 0.3) -> None:
        super().__init__()
        self.embed_dim = int(weight.shape[1])
        self.num_classes = int(weight.shape[0])
        self.body = nn.Identity()  # the inputs are the embeddings; hookable like a backbone's body
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.embed_dim, self.num_classes)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            self.classifier.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        self.eval()

    @classmethod
    def nearest_centre(cls, centres: np.ndarray, scale: float = 1.0, dropout: float = 0.3) -> LinearHead:
        """Logits ``scale·(z·c − |c|²/2)``: the Bayes classifier for isotropic blobs."""
        return cls(scale * centres, -0.5 * scale * (centres**2).sum(axis=1), dropout)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(z))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def has_active_dropout(self) -> bool:
        return self.dropout.p > 0
