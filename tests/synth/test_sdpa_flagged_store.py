"""ADP010 where the attention stores its probabilities on the module for outside code (a
visualization map) only under a constructor flag (issue 12, session 44): ``if self.vis:
self.attn_map = attn``.  The guard sends the call to the original path while the flag is on,
so the map is stored exactly as before; with the flag off the fused call runs.  Where the file
turns the flag on for every instance it builds (the attribute only ever the literal True, or
a constructor parameter every construction in the file passes True), the values are stored on
every call as the model is built: the patch's fused path would never run, so the site is
declined as an unflagged store is.

The modules are written for this test and run beside the original in float64 (eval and
training, dropout 0, forward and backward), counting the fused calls.
"""

from __future__ import annotations

import textwrap

import pytest

torch = pytest.importorskip("torch")

from sdpa_modules import RULES, Counter, assert_same_step, load, sdpa_fixed  # noqa: E402

from adopter.synth import fix_text  # noqa: E402

F64 = torch.float64

FLAGGED = textwrap.dedent('''
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim, heads=2, keep_map=False):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)
            self.keep_map = keep_map
            self.attn_map = None

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            attn = (q @ k.transpose(-2, -1)) * self.scale
            attn = attn.softmax(dim=-1)
            if self.keep_map:
                self.attn_map = attn
            x = (attn @ v).transpose(1, 2).reshape(b, n, c)
            return self.proj(x)


    class Block(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.attn = Attention(dim)

        def forward(self, x):
            return x + self.attn(x)

        def maps(self):
            return self.attn.attn_map
''')


def _declined(source: str) -> str:
    result = fix_text(source, "attention.py", RULES)
    assert not result.applied, result.text
    assert result.skipped, "the attention was not found"
    return result.skipped[0][1]


def test_the_store_under_the_flag_goes_with_the_original_path():
    fixed = sdpa_fixed(FLAGGED)
    head, fused = fixed.split("else:", 1)
    fused = fused.split("return self.proj(x)")[0]
    assert "self.keep_map" in head.split("attn = (q @ k")[0]  # the guard tests the flag
    assert "scaled_dot_product_attention(" in fused and "attn_map" not in fused


@pytest.mark.parametrize("keep_map", [False, True])
def test_the_patch_matches_the_original_with_the_flag_off_and_on(keep_map):
    original, new = load(FLAGGED, "orig"), load(sdpa_fixed(FLAGGED), "new")
    counter = Counter(new)
    torch.manual_seed(0)
    a = original["Attention"](8, keep_map=keep_map).to(F64)
    b = new["Attention"](8, keep_map=keep_map).to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 8, dtype=F64)
    for training in (False, True):
        a.train(training)
        b.train(training)
        before = counter.calls
        assert_same_step(a, b, [x])
        assert counter.calls - before == (0 if keep_map else 1)
        if keep_map:
            torch.testing.assert_close(b.attn_map, a.attn_map)
        else:
            assert a.attn_map is None and b.attn_map is None


def test_the_block_that_reads_the_map_sees_what_it_saw():
    """The file reads the stored map (``Block.maps``): with the flag off both hold None, with it
    on both hold the same probabilities."""
    original, new = load(FLAGGED, "orig"), load(sdpa_fixed(FLAGGED), "new")
    torch.manual_seed(0)
    a, b = original["Block"](8).to(F64), new["Block"](8).to(F64)
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 5, 8, dtype=F64)
    assert_same_step(a, b, [x])
    assert a.maps() is None and b.maps() is None
    a.attn.keep_map = b.attn.keep_map = True
    assert_same_step(a, b, [x])
    torch.testing.assert_close(b.maps(), a.maps())


def test_one_construction_with_the_flag_on_and_one_off_is_a_configuration():
    source = FLAGGED.replace("self.attn = Attention(dim)",
                             "self.attn = Attention(dim, keep_map=True)\n        self.other = Attention(dim)")
    assert "scaled_dot_product_attention(" in sdpa_fixed(source)


@pytest.mark.parametrize("source", [
    FLAGGED.replace("self.attn = Attention(dim)", "self.attn = Attention(dim, keep_map=True)"),
    FLAGGED.replace("self.attn = Attention(dim)", "self.attn = Attention(dim, 2, True)"),
    FLAGGED.replace("self.keep_map = keep_map", "self.keep_map = True"),
], ids=["every-construction-keyword", "every-construction-positional", "literal-attribute"])
def test_a_flag_the_file_always_turns_on_is_a_store_on_every_call(source):
    why = _declined(source)
    assert "stored in `self.attn_map`" in why and "every instance the file builds sets to True" in why


def test_a_flag_set_from_outside_the_class_stays_a_configuration():
    # (the literal True in __init__, but the file turns it off on an instance: a configuration)
    source = FLAGGED.replace("self.keep_map = keep_map", "self.keep_map = True").replace(
        "self.attn = Attention(dim)", "self.attn = Attention(dim)\n        self.attn.keep_map = False")
    assert "scaled_dot_product_attention(" in sdpa_fixed(source)


def test_a_default_on_flag_with_no_construction_in_the_file_stays_a_configuration():
    source = FLAGGED.replace("keep_map=False):", "keep_map=True):").replace(
        "self.attn = Attention(dim)", "self.attn = nn.Identity()")
    assert "scaled_dot_product_attention(" in sdpa_fixed(source)


def test_a_store_under_a_test_of_the_attention_values_stays_declined():
    source = FLAGGED.replace("if self.keep_map:", "if attn.amax() > 0.5:")
    assert "tests `attn`" in _declined(source)
