"""Inputs repaired from a module's own error (``adopter.verify.inputs.repairs``) stay small: a
guess that multiplies axes is dropped when it would hold more than MAX_REPAIR_ELEMENTS, instead
of allocating gigabytes (timm's LeViT asked verify for 14 GB and was killed)."""

from __future__ import annotations

import pytest
import torch

from adopter.verify.build import Call
from adopter.verify.inputs import MAX_REPAIR_ELEMENTS, repairs


def test_tokens_repeated_into_a_grid_when_the_module_unpacks_four_axes():
    x = torch.randn(2, 6, 8)
    with pytest.raises(ValueError) as info:
        b, h, w, c = x.shape  # what the module's forward does with its input
    (call,) = repairs(Call((x,)), info.value)
    assert call.args[0].shape == (2, 6, 6, 8)


def test_a_grid_that_would_be_too_large_is_not_tried():
    side = int(MAX_REPAIR_ELEMENTS ** 0.5) + 1  # [1, side, side, 1] is just over the limit
    x = torch.randn(1, side, 1)
    assert repairs(Call((x,)), ValueError("not enough values to unpack (expected 4, got 3)")) == []
    small = torch.randn(1, side // 4, 1)
    assert [c.args[0].shape for c in repairs(Call((small,)), ValueError(
        "not enough values to unpack (expected 4, got 3)"))] == [(1, side // 4, side // 4, 1)]


def test_a_length_a_table_fixes_is_not_grown_past_the_limit():
    text = "The size of tensor a (8) must match the size of tensor b (4096) at non-singleton dimension 1"
    wide = torch.randn(2, 8, 3000)  # [2, 4096, 3000] is over the limit
    assert repairs(Call((wide,)), RuntimeError(text)) == []
    narrow = torch.randn(2, 8, 16)
    (call,) = repairs(Call((narrow,)), RuntimeError(text))
    assert call.args[0].shape == (2, 4096, 16)


WINDOWED = '''
import torch
from torch import nn


class Windowed(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, hw_shape):
        b, n, c = x.shape
        h, w = hw_shape
        x = self.proj(x).view(b, h, w, c)
        return x.mean(dim=(1, 2))


class Split(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, qk):
        q, k = qk
        return self.proj(x) + q @ k
'''


def _module(tmp_path, name):
    import importlib.util
    path = tmp_path / "windowed.py"
    path.write_text(WINDOWED)
    spec = importlib.util.spec_from_file_location("windowed_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)()


def test_sizes_the_forward_unpacks_are_a_grid_of_the_tokens(tmp_path):
    from adopter.verify.inputs import input_options, unpacked_sizes
    from adopter.verify.sizes import VERIFY

    windowed = _module(tmp_path, "Windowed")
    assert unpacked_sizes(windowed.forward, "hw_shape") == 2
    calls = list(input_options(windowed, {}, VERIFY, {}))
    first = next(c for c in calls if len(c.args) == 2 and c.args[0].shape[-1] == 8)
    x, hw_shape = first.args
    assert isinstance(hw_shape, tuple) and hw_shape[0] * hw_shape[1] == x.shape[1]
    windowed(*first.args)  # the call runs


def test_a_pair_of_tensors_unpacked_is_not_sizes(tmp_path):
    from adopter.verify.inputs import unpacked_sizes

    assert unpacked_sizes(_module(tmp_path, "Split").forward, "qk") is None


PERCEIVER = '''
import torch
from einops import rearrange
from torch import nn


def rearrange_many(tensors, pattern, **axes):
    return [rearrange(t, pattern, **axes) for t in tensors]


class Resampler(nn.Module):
    """Latents attending to media and themselves, both (batch, time, tokens, width)."""

    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=False)

    def forward(self, x, latents):
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat((x, latents), dim=-2)).chunk(2, dim=-1)
        q, k, v = rearrange_many((q, k, v), "b t n (h d) -> b h t n d", h=self.heads)
        attn = (q @ k.transpose(-1, -2)).softmax(dim=-1)
        return rearrange(attn @ v, "b h t n d -> b t n (h d)")
'''


def test_every_tensor_of_a_forward_that_rearranges_four_axes_is_tried_with_four(tmp_path):
    # open-flamingo's PerceiverAttention: the pattern (through einops_exts' rearrange_many)
    # says 4-D tokens, and the media and the latents must both be 4-D for the cat to run
    import importlib.util

    from adopter.verify.inputs import input_options, input_rank
    from adopter.verify.sizes import VERIFY

    path = tmp_path / "perceiver.py"
    path.write_text(PERCEIVER)
    spec = importlib.util.spec_from_file_location("perceiver_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    resampler = module.Resampler()
    assert input_rank(resampler.forward) == (4, False)
    ran = []
    for call in input_options(resampler, {}, VERIFY, {}):
        try:
            resampler(*call.args, **call.kwargs)
        except Exception:  # noqa: BLE001 - a candidate the module does not take
            continue
        ran.append(call)
        break
    assert ran and all(a.dim() == 4 for a in ran[0].args)


class _EightWideHeads(torch.nn.Module):
    """Written for this test: the head size it derives from two arguments must be a multiple of 8."""

    def __init__(self, embed_dim, query_heads, kv_heads):
        super().__init__()
        if query_heads % kv_heads:
            raise ValueError("query heads must be a multiple of key/value heads")
        head_dim = embed_dim // query_heads
        if head_dim % 8:
            raise ValueError(f"head_dim (embed_dim / num_heads = {head_dim}) must be divisible by 8")
        self.proj = torch.nn.Linear(embed_dim, embed_dim)


def _built(option, module=None):
    args, kwargs = option.make(module, True)
    try:
        _EightWideHeads(*args, **kwargs)
    except ValueError:
        return None
    return kwargs


def test_a_size_derived_from_an_argument_the_error_names_is_raised_through_it():
    """No argument is off by itself (embed_dim 32 and query_heads 8 are multiples of 8): the
    argument the error names is tried 8 times as large, and that build runs."""
    from adopter.verify.build import _Option, divisible_options

    given = {"embed_dim": 32, "query_heads": 8, "kv_heads": 4}
    option = _Option(lambda module, original: ((), dict(given)), "_EightWideHeads(embed_dim=32, ...)")
    with pytest.raises(ValueError) as info:
        _EightWideHeads(**given)
    retries = divisible_options(option, given, str(info.value))
    built = [kwargs for kwargs in map(_built, retries) if kwargs is not None]
    assert built == [{"embed_dim": 256, "query_heads": 8, "kv_heads": 4}], [r.shown for r in retries]
    assert any(r.shown.endswith("with embed_dim=256 (a size derived from it divisible by 8)") for r in retries)


def test_an_argument_the_error_does_not_name_is_not_scaled():
    from adopter.verify.build import _Option, divisible_options

    given = {"width": 32, "depth": 8}
    option = _Option(lambda module, original: ((), dict(given)), "Model(width=32, depth=8)")
    assert divisible_options(option, given, "head size 4 must be divisible by 8") == []


class _EitherSize(torch.nn.Module):
    """Two optional sizes, exactly one of which must be given (written for this test)."""

    def __init__(self, width, max_span=None, spans=None):
        super().__init__()
        assert (max_span is None) != (spans is None), "either max_span or spans must be given"
        if spans is not None:
            assert isinstance(spans, tuple), "spans must be a tuple"
        self.proj = torch.nn.Linear(width, width)


def test_a_parameter_the_constructor_error_names_is_given_a_size():
    """Both sizes default to None, and the class's assertion names them: each is tried with a
    small size, one at a time; the tuple-wanting one fails to build (a try, not a verdict)."""
    from adopter.verify.build import _Option, named_options

    given = {"width": 16}
    option = _Option(lambda module, original: ((), dict(given)), "_EitherSize(width=16)")
    with pytest.raises(AssertionError) as info:
        _EitherSize(**given)
    retries = named_options(option, given, str(info.value), _EitherSize)
    assert [r.shown for r in retries] == ["_EitherSize(width=16) with max_span=4 (named by its error)",
                                          "_EitherSize(width=16) with spans=4 (named by its error)"]
    built = []
    for retry in retries:
        args, kwargs = retry.make(None, True)
        try:
            _EitherSize(*args, **kwargs)
        except AssertionError:
            continue
        built.append(kwargs)
    assert built == [{"width": 16, "max_span": 4}]
    # a parameter the error does not name, or one already given, is left as it is
    assert named_options(option, given, "width must be even", _EitherSize) == []
    assert named_options(option, {"width": 16, "max_span": 2}, str(info.value), _EitherSize)[0].shown.endswith(
        "with spans=4 (named by its error)")
