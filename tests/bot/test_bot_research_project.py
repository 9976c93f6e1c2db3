"""The bot on a small research-style project: a nanoGPT-like model configured by a dataclass and a
training script.  No factory is configured; the pull request must carry patches that
``adopter verify`` proved (verification on, timing off so the outcome does not depend on the
runner's load)."""

from __future__ import annotations

import json

import pytest

from conftest import PYPROJECT, needs_synth, verify_available

MODEL = '''\
"""A tiny GPT: dataclass config, hand-written causal attention."""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    block_size: int = 256
    vocab_size: int = 65
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.2


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.key = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.query = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.value = nn.Linear(config.n_embd, config.n_embd, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.register_buffer("mask", torch.tril(torch.ones(config.block_size, config.block_size)))

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = self.query(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = self.value(x).view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = q @ k.transpose(-2, -1) / math.sqrt(k.size(-1))
        att = att.masked_fill(self.mask[:T, :T] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = self.dropout(att) @ v
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attn = CausalSelfAttention(config)
        self.drop = nn.Dropout(config.dropout)
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(nn.Linear(config.n_embd, 4 * config.n_embd), nn.GELU(),
                                 nn.Linear(4 * config.n_embd, config.n_embd))
        self.ln2 = nn.LayerNorm(config.n_embd)

    def forward(self, x):
        x = self.ln1(self.drop(self.attn(x)) + x)
        return self.ln2(x + self.mlp(x))


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.head = nn.Linear(config.n_embd, config.vocab_size)

    def forward(self, idx, targets=None):
        b, t = idx.shape
        x = self.tok(idx) + self.pos(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.head(x)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(b * t, -1), targets.view(b * t))
        return logits, loss
'''

TRAIN = '''\
"""Train the tiny GPT on random characters."""
import torch

from model import GPT, GPTConfig

batch_size = 16
learning_rate = 3e-4
model_args = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65, dropout=0.1)


def get_batch():
    x = torch.randint(0, 65, (batch_size, 64))
    return x, torch.roll(x, -1, dims=1)


if __name__ == "__main__":
    model = GPT(GPTConfig(**model_args))
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.99))
    for step in range(1000):
        xb, yb = get_batch()
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
'''


@needs_synth
@pytest.mark.skipif(verify_available() is not None, reason=verify_available() or "")
def test_bot_opens_a_pull_request_with_verified_patches_on_a_research_project(world, fake_github):
    world.push({"pyproject.toml": PYPROJECT, "README.md": "tiny gpt\n"}, "init")
    before, after = world.push({"model.py": MODEL, "train.py": TRAIN}, "add a tiny GPT")
    # the default rules plus ADP005 (dropout -> add -> LayerNorm, off by default: it claims CUDA only)
    run = world.run_bot(fake_github, before, after, subprocess_run=True, benchmark="false",
                        select="ADP001,ADP002,ADP003,ADP005,ADP006,ADP010,ADP012")
    assert run.rc == 0, run.text

    rows = json.loads(open(run.outputs["results-file"]).read())["rows"]
    # the patches fix wrote (a finding another rule's patch covers, e.g. sdpa over softmax, is "not-fixed")
    patches = [r for r in rows if r["status"] not in ("whole-model", "not-fixed")]
    by_file: dict[str, list[dict]] = {}
    for row in patches:
        by_file.setdefault(row["path"], []).append(row)
    # every patch of the model was proved on the model's own classes, built from its dataclass:
    # the residual dropout + LayerNorm (the softmax rule, ADP004, is off by default)
    rules = {r["rule"] for r in by_file["model.py"]}
    assert "ADP005" in rules, rows
    for row in patches:
        assert row["status"] == "proposed" and row["verified"] == "yes", row
        assert row["max_abs_diff"] is not None and row["max_abs_diff"] < 1e-4
    # the optimizer patch in the training script was checked on the optimizer it builds
    (optimizer,) = [r for r in by_file["train.py"] if r["rule"] == "ADP012"]
    assert optimizer["reason"].startswith("builds the same AdamW")

    posts = fake_github.calls("POST", r"/pulls$")
    assert len(posts) == 1
    body = posts[0].body["body"]
    for row in patches:
        table_row = next(line for line in body.splitlines()
                         if line.startswith(f"| {row['rule']}") and f"{row['path']}:{row['line']}" in line)
        assert "yes, max abs diff" in table_row
    patched_model = world.origin_file("adopter/main", "model.py")
    assert "adopter_kernels" in patched_model or "scaled_dot_product_attention" in patched_model
    assert "fused=True" in world.origin_file("adopter/main", "train.py")
