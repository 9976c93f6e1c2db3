import torch
import torch.nn.functional as F
from torch.nn.functional import scaled_dot_product_attention


def attend(q, k, v, mask):
    # Scores, masked.
    if (
        not mask.is_floating_point()
        or (
            torch.is_grad_enabled()
            and not torch.compiler.is_compiling()
            and mask.amax(-1).min() <= -100.0
        )
    ):
        scores = torch.matmul(q, k.transpose(-1, -2))  # raw scores
        scores = scores + mask
        probs = F.softmax(scores, dim=-1)
        out = torch.matmul(probs, v)
    else:
        out = scaled_dot_product_attention(
            q, k, v, attn_mask=mask, scale=1.0
        )
    return out, F.gelu(q)
