"""A relay that collects the probabilities under ``if``s of its own and hands them back (a Swin
stage: ``if not self.training: maps.append(attn.unsqueeze(0))`` in its loop over the blocks,
then ``if not self.training: attn = torch.cat(maps).mean(0)``, ``return x, attn``), called by a
network that discards them and holds its stages in an empty ``nn.ModuleList()`` grown one
``append(layer)`` at a time: the stage takes the flag, passes it to its blocks, and its guards
get ``and need_weights`` (``weights.Decline._collected``, ``weights._appended_members``).  With
the flag false the guards' bodies are skipped, which changes nothing but the value the network
discards.  Near-misses keep the original path: a guard that does something else too, a guard
whose test reads the probabilities, a read outside the guards, an ``else``, a guard body that
reads the module, a guard body calling a function of the file (it could do more
than derive a value), and a list of stages also grown another way.

The modules are written for these tests; the fixed ones run beside the originals in float64
(outputs, input and parameter gradients; eval and train), the fused calls counted.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, load, sdpa_fixed  # noqa: E402

HEAD = textwrap.dedent('''
    import torch
    from torch import nn


    def keep(attn):
        return attn.unsqueeze(0)


    class WindowAttn(nn.Module):
        def __init__(self, dim=16, heads=2):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)
            self.bias = nn.Parameter(torch.randn(heads, 1, 1) * 0.1)

        def forward(self, x):
            B, N, C = x.shape
            q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
            q = q * self.scale
            attn = q @ k.transpose(-2, -1)
            attn = attn + self.bias
            attn = attn.softmax(dim=-1)
            x = (attn @ v).transpose(1, 2).reshape(B, N, C)
            return self.proj(x), attn


    class Block(nn.Module):
        def __init__(self, dim=16):
            super().__init__()
            self.norm = nn.LayerNorm(dim)
            self.attn = WindowAttn(dim)

        def forward(self, x):
            y, attn = self.attn(self.norm(x))
            return x + y, attn
''')

STAGE = textwrap.dedent('''

    class Stage(nn.Module):
        def __init__(self, dim=16, depth=2):
            super().__init__()
            self.blocks = nn.ModuleList([Block(dim) for _ in range(depth)])

        def forward(self, x):
            maps = []
            for blk in self.blocks:
                x, attn = blk(x)
                if not self.training:
                    maps.append(attn.unsqueeze(0))
            if not self.training:
                attn = torch.cat(maps, dim=0)
                attn = torch.mean(attn, dim=0)
            return x, attn


    class Net(nn.Module):
        def __init__(self, dim=16, stages=2):
            super().__init__()
            self.layers = nn.ModuleList()
            for _ in range(stages):
                layer = Stage(dim)
                self.layers.append(layer)

        def forward(self, x):
            for i, layer in enumerate(self.layers):
                x, attn = layer(x)
            return x
''')

SOURCE = HEAD + STAGE

# each near-miss: a stage whose collecting cannot be skipped exactly, and a network that discards
NEAR = {
    "Busy": '''
            if not self.training:
                maps.append(attn.unsqueeze(0))
                x = x * 1.0''',
    "Tested": '''
            if attn.sum() > 0:
                maps.append(attn.unsqueeze(0))''',
    "Outside": '''
            maps.append(attn.unsqueeze(0))''',
    "Else": '''
            if not self.training:
                maps.append(attn.unsqueeze(0))
            else:
                maps.append(attn.unsqueeze(0) * 0)''',
    "Reads": '''
            if not self.training:
                maps.append(attn.unsqueeze(0) * self.weight)''',
    "Calls": '''
            if not self.training:
                maps.append(keep(attn))''',
}


def near_miss(name: str, collect: str) -> str:
    collect = textwrap.indent(textwrap.dedent(collect).strip("\n"), " " * 12)
    return textwrap.dedent(f'''

        class Stage{name}(nn.Module):
            def __init__(self, dim=16, depth=2):
                super().__init__()
                self.weight = 1.0
                self.blocks = nn.ModuleList([Block(dim) for _ in range(depth)])

            def forward(self, x):
                maps = []
                for blk in self.blocks:
                    x, attn = blk(x)
        COLLECT
                if not self.training:
                    attn = torch.cat(maps, dim=0).mean(dim=0)
                return x, attn


        class Net{name}(nn.Module):
            def __init__(self, dim=16):
                super().__init__()
                self.layers = nn.ModuleList()
                layer = Stage{name}(dim)
                self.layers.append(layer)

            def forward(self, x):
                for layer in self.layers:
                    x, _ = layer(x)
                return x
        ''').replace("COLLECT", collect)


def body(text: str, name: str) -> str:
    return text.split(f"class {name}(")[1].split("\nclass ")[0]


@pytest.fixture(scope="module")
def fixed() -> str:
    return sdpa_fixed(SOURCE + "".join(near_miss(name, collect) for name, collect in NEAR.items()))


def test_the_stage_takes_the_flag_and_guards_its_collecting(fixed):
    stage = body(fixed, "Stage")
    assert "def forward(self, x, need_weights: bool = True):" in stage
    assert "x, attn = blk(x, need_weights=need_weights)" in stage
    assert stage.count("if not self.training and need_weights:") == 2
    assert "return x, attn" in stage
    assert "x, attn = layer(x, need_weights=False)" in body(fixed, "Net")
    assert "y, attn = self.attn(self.norm(x), need_weights=need_weights)" in body(fixed, "Block")


@pytest.mark.parametrize("name", sorted(NEAR))
def test_near_misses_keep_the_original_path(fixed, name):
    stage = body(fixed, f"Stage{name}")
    assert "need_weights" not in stage, stage
    assert "x, _ = layer(x)\n" in body(fixed, f"Net{name}")


def test_without_the_collecting_stage_nothing_declines():
    from adopter.synth import fix_text

    alone = HEAD + "".join(near_miss(name, collect) for name, collect in NEAR.items())
    result = fix_text(alone, "attention.py", RULES)
    assert not result.applied
    assert any("no caller in this file declines it" in why for _, why in result.skipped)


@pytest.mark.parametrize("grown", [
    "self.layers.insert(0, Stage(dim))",   # grown another way too
    "layer = Stage(dim)",                   # the appended name bound twice
])
def test_a_list_of_stages_grown_otherwise_is_not_read_as_theirs(grown):
    from adopter.synth import fix_text

    source = SOURCE.replace("            self.layers.append(layer)\n",
                            f"            self.layers.append(layer)\n        {grown}\n")
    assert grown in source
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied, result.text


@pytest.mark.parametrize("top", ["Net", "Stage"])
@pytest.mark.parametrize("training", [False, True])
def test_the_fixed_network_computes_what_the_original_did(fixed, top, training):
    original, patched = load(SOURCE, "original"), load(fixed, "patched")
    counter = Counter(patched)
    torch.manual_seed(0)
    one = original[top]().double().train(training)
    two = patched[top]().double().train(training)
    two.load_state_dict(one.state_dict())
    x = torch.randn(3, 6, 16, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_a, out_b = one(xa), two(xb)
    # the network declines the maps (2 stages x 2 blocks fused); a stage called alone keeps them
    assert counter.calls == (4 if top == "Net" else 0)
    if top == "Stage":
        (out_a, maps_a), (out_b, maps_b) = out_a, out_b
        torch.testing.assert_close(maps_b, maps_a)
    # float64 over 6 keys and 8 channels per head: torch.testing's float64 defaults
    torch.testing.assert_close(out_b, out_a)
    weight = torch.randn_like(out_a)
    (weight * out_a).sum().backward()
    (weight * out_b).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad)
    grads = dict(one.named_parameters())
    for name, param in two.named_parameters():
        torch.testing.assert_close(param.grad, grads[name].grad, msg=name)
