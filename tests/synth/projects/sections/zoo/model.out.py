"""A model whose imports are sorted by isort: stdlib, third party, first party, local."""

from __future__ import annotations

import os

import numpy as np
from torch import nn
from torch.nn.functional import scaled_dot_product_attention

from zoo.config import ZooConfig

from .utils import helper


class Attention(nn.Module):
    def forward(self, q, k, v, mask):
        return scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)


def setup(config: ZooConfig):
    return helper(os.getcwd(), np.zeros(1))
