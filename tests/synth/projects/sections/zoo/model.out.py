"""A model whose imports are sorted by isort: stdlib, third party, first party, local."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.functional import scaled_dot_product_attention

from zoo.config import ZooConfig

from .utils import helper


class Attention(nn.Module):
    def forward(self, q, k, v, mask):
        if (
            not mask.is_floating_point()
            or (
                torch.is_grad_enabled()
                and not torch.compiler.is_compiling()
                and mask.amax(-1).min() <= -100.0
            )
        ):
            scores = torch.matmul(q, k.transpose(-1, -2))
            scores = scores + mask
            probs = F.softmax(scores, dim=-1)
            return torch.matmul(probs, v)
        else:
            return scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)


def setup(config: ZooConfig):
    return helper(os.getcwd(), np.zeros(1))
