import torch
import torch.nn.functional as F


def attend(q, k, v, mask):
    # Scores, masked.
    scores = torch.matmul(q, k.transpose(-1, -2))  # raw scores
    scores = scores + mask
    probs = F.softmax(scores, dim=-1)
    out = torch.matmul(probs, v)
    return out, F.gelu(q)
