"""SDPA attention factories against the real transformers 4.34 classes (tiny configs).

Every equality test also counts SDPA calls, so a silently taken fallback cannot make a fast-path
test pass; fallback tests assert the opposite.
"""

from __future__ import annotations

import copy
import pickle
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

transformers = pytest.importorskip("transformers")

from transformers import BertConfig, GPT2Config, T5Config  # noqa: E402
from transformers.models.bert import modeling_bert  # noqa: E402
from transformers.models.gpt2 import modeling_gpt2  # noqa: E402
from transformers.models.t5 import modeling_t5  # noqa: E402

from adopter_kernels import sdpa_bert_self_attention, sdpa_gpt2_attention, sdpa_t5_attention  # noqa: E402

BertSelfAttention = modeling_bert.BertSelfAttention
T5Attention = modeling_t5.T5Attention
GPT2Attention = modeling_gpt2.GPT2Attention


@pytest.fixture
def sdpa_calls(monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    return calls


def _tensors(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict) or hasattr(out, "to_tuple"):
        out = out.to_tuple() if hasattr(out, "to_tuple") else tuple(out.values())
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []


def _structure(out):
    if isinstance(out, torch.Tensor):
        return "T"
    if hasattr(out, "to_tuple"):
        out = out.to_tuple()
    if isinstance(out, (tuple, list)):
        return tuple(_structure(o) for o in out)
    return repr(out)


def _to_dtype(value, dtype):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(dtype)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_dtype(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _to_dtype(v, dtype) for k, v in value.items()}
    return value


def in_dtype(module, dtype):
    """``module`` with its parameters and buffers in ``dtype``, and a pre-hook that casts the
    floating-point inputs of every call to it (tests build their inputs in float32)."""
    if getattr(module, "_test_dtype", None) == dtype:
        return module
    module.to(dtype)
    module._test_dtype = dtype
    module.register_forward_pre_hook(
        lambda _m, args, kwargs: (_to_dtype(args, dtype), _to_dtype(kwargs, dtype)), with_kwargs=True)
    return module


def _close_or_no_less_accurate(b, a, r, name=""):
    """``b`` (patched, float32) equals ``a`` (original, float32) within the default float32
    tolerance, or, where rounding accumulated past it, ``b`` is at most 4x as far from ``r``
    (the original run in float64) as ``a`` is: the patch may sum in another order, not be
    less accurate.  The allowance is this machine's own float32 error, not a fixed number
    that holds on one BLAS and fails on another."""
    try:
        torch.testing.assert_close(b, a)
        return
    except AssertionError:
        pass
    err_a = (a.detach().double() - r.detach().double()).abs().max().item()
    err_b = (b.detach().double() - r.detach().double()).abs().max().item()
    eps = torch.finfo(a.dtype).eps * r.detach().double().abs().max().item()
    assert err_b <= 4 * err_a + eps, f"{name}: patched error {err_b:.3g} vs float64, original's {err_a:.3g}"


def compare(orig, patched, call, *, train=False, backward=True, atol=None, rtol=None,
            dtype=None, reference64=False):
    """Run ``call(module)`` on both modules; compare outputs, their structure, and all grads.

    ``dtype=torch.float64`` runs both modules (and the call's floating-point inputs) in float64.
    Whole-model tests use it: the SDPA path and the eager path sum in different orders, and a
    float32 gradient accumulated over every position and layer of a model (GPT-2's
    ``wpe.weight``, a sum over batch x positions of products through every block) differs by
    more than float32's default tolerance through rounding alone, by an amount that depends on
    the machine's BLAS. In float64 the same reordering costs ~1e-15 relative, so float64's
    default tolerances still catch a real difference on any machine. Layer tests keep float32:
    their masks are built for float32 (``finfo(float32).min`` entries), and T5 computes its
    softmax in float32 whatever the input dtype, so float64 would not be float64 there: the
    T5 whole-model tests use ``reference64`` instead (see ``_close_or_no_less_accurate``).
    """
    if dtype is not None:
        in_dtype(orig, dtype), in_dtype(patched, dtype)
    reference = None
    if reference64:  # the original, run in float64 on the same inputs (dropout off: eval or p=0)
        reference = in_dtype(copy.deepcopy(orig), torch.float64)
        reference.train(train)
    orig.train(train), patched.train(train)
    out_o, out_p = call(orig), call(patched)
    out_r = call(reference) if reference is not None else None
    assert _structure(out_p) == _structure(out_o)
    to, tp = _tensors(out_o), _tensors(out_p)
    tr = _tensors(out_r) if out_r is not None else [None] * len(to)
    for a, b, r in zip(to, tp, tr):
        if r is not None:
            _close_or_no_less_accurate(b, a, r)
        else:
            torch.testing.assert_close(b, a, atol=atol, rtol=rtol)
    if backward:
        pairs = [(a, b, r) for a, b, r in zip(to, tp, tr) if a.requires_grad]
        grads = [torch.randn_like(a) for a, _, _ in pairs]
        torch.autograd.backward([a for a, _, _ in pairs], grads)
        torch.autograd.backward([b for _, b, _ in pairs], grads)
        if reference is not None:
            torch.autograd.backward([r for _, _, r in pairs], [g.double() for g in grads])
        po, pp = dict(orig.named_parameters()), dict(patched.named_parameters())
        pr = dict(reference.named_parameters()) if reference is not None else {}
        assert po.keys() == pp.keys()
        for name in po:
            ga, gb = po[name].grad, pp[name].grad
            assert (ga is None) == (gb is None), name
            if ga is not None and name in pr:
                _close_or_no_less_accurate(gb, ga, pr[name].grad, name)
            elif ga is not None:
                torch.testing.assert_close(gb, ga, atol=atol, rtol=rtol, msg=lambda m: f"{name}: {m}")
    return out_o, out_p


def swap_classes(model, cls, factory):
    """The patched model: a deep copy whose ``cls`` layers are the factory's subclass."""
    patched = copy.deepcopy(model)
    n = 0
    for m in patched.modules():
        if type(m) is cls:
            m.__class__ = factory(cls)
            n += 1
    assert n
    return patched


def additive(mask2d, dtype=torch.float32):
    """The (B, 1, 1, L) additive mask Hugging Face models build from a 0/1 padding mask."""
    return (1.0 - mask2d[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


# ----------------------------------------------------------------------------------- factories


@pytest.mark.parametrize(
    "factory,cls",
    [(sdpa_bert_self_attention, BertSelfAttention), (sdpa_t5_attention, T5Attention),
     (sdpa_gpt2_attention, GPT2Attention)],
)
def test_factory_returns_a_cached_named_subclass(factory, cls):
    sub = factory(cls)
    assert sub is factory(cls)
    assert factory(sub) is sub  # patching twice does not stack
    assert issubclass(sub, cls) and sub is not cls
    assert sub.__name__ == cls.__name__ + "Sdpa"
    assert sub.__qualname__ == cls.__qualname__ + "Sdpa"
    assert sub.__init__ is cls.__init__


def test_signature_mismatch_is_left_unpatched_with_a_warning():
    class BertSelfAttention(nn.Module):  # a local class of the same name but another interface
        def forward(self, x, mask):
            return x

    with pytest.warns(RuntimeWarning, match="leaving it unpatched"):
        assert sdpa_bert_self_attention(BertSelfAttention) is BertSelfAttention


# ---------------------------------------------------------------------------------------- BERT


def bert_config(**kw):
    base = dict(hidden_size=32, num_attention_heads=4, intermediate_size=64, num_hidden_layers=2,
                vocab_size=99, max_position_embeddings=64, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)
    base.update(kw)
    return BertConfig(**base)


def bert_pair(**kw):
    cfg = bert_config(**kw)
    orig = BertSelfAttention(cfg)
    patched = sdpa_bert_self_attention(BertSelfAttention)(cfg)
    patched.load_state_dict(orig.state_dict(), strict=True)
    assert isinstance(patched, BertSelfAttention)
    return orig, patched


def test_bert_state_dict_keys_are_identical():
    orig, patched = bert_pair()
    assert list(orig.state_dict()) == list(patched.state_dict())
    orig.load_state_dict(patched.state_dict(), strict=True)


@pytest.mark.parametrize("train", [False, True])
def test_bert_encoder_with_padding_mask(train, sdpa_calls):
    orig, patched = bert_pair()
    x = torch.randn(3, 7, 32)
    pad = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 2 + [0] * 5])
    compare(orig, patched, lambda m: m(x, attention_mask=additive(pad)), train=train)
    assert len(sdpa_calls) == 1 and sdpa_calls[0]["dropout_p"] == 0.0


def test_bert_eval_ignores_configured_dropout(sdpa_calls):
    orig, patched = bert_pair(attention_probs_dropout_prob=0.4)
    x = torch.randn(2, 5, 32)
    compare(orig, patched, lambda m: m(x), train=False)
    assert sdpa_calls[0]["dropout_p"] == 0.0
    patched.train()
    patched(x)
    assert sdpa_calls[-1]["dropout_p"] == pytest.approx(0.4)


def test_bert_decoder_self_attention_with_cache(sdpa_calls):
    orig, patched = bert_pair(is_decoder=True)
    x = torch.randn(2, 6, 32)
    causal = torch.tril(torch.ones(6, 6))[None, None]
    pad = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])[:, None, None, :]
    mask = (1.0 - causal * pad) * torch.finfo(torch.float32).min
    out_o, out_p = compare(orig, patched, lambda m: m(x, attention_mask=mask), backward=False)
    assert len(out_p) == 2 and len(out_p[1]) == 2  # (context, (key, value))
    # one more token with the returned cache
    step = torch.randn(2, 1, 32)
    step_mask = torch.zeros(2, 1, 1, 7)
    compare(orig, patched,
            lambda m: m(step, attention_mask=step_mask, past_key_value=(out_o[1] if m is orig else out_p[1])),
            backward=False)
    assert len(sdpa_calls) == 2


def test_bert_cross_attention_with_and_without_cache(sdpa_calls):
    orig, patched = bert_pair(is_decoder=True, add_cross_attention=True)
    x, enc = torch.randn(2, 4, 32), torch.randn(2, 9, 32)
    enc_mask = additive(torch.tensor([[1] * 9, [1] * 6 + [0] * 3]))
    out_o, out_p = compare(
        orig, patched, lambda m: m(x, encoder_hidden_states=enc, encoder_attention_mask=enc_mask), train=True
    )
    compare(
        orig, patched,
        lambda m: m(x[:, :1], encoder_hidden_states=enc, encoder_attention_mask=enc_mask,
                    past_key_value=tuple(t.detach() for t in (out_o if m is orig else out_p)[1])),
        backward=False,
    )
    assert len(sdpa_calls) == 2


@pytest.mark.parametrize("case", ["output_attentions", "head_mask", "relative_key", "bool_mask"])
def test_bert_falls_back_with_equal_results(case, sdpa_calls):
    kw = {"position_embedding_type": "relative_key_query"} if case == "relative_key" else {}
    orig, patched = bert_pair(**kw)
    x = torch.randn(2, 5, 32)
    mask = additive(torch.tensor([[1] * 5, [1] * 3 + [0] * 2]))
    args = {"attention_mask": mask}
    if case == "output_attentions":
        args["output_attentions"] = True
    if case == "head_mask":
        args["head_mask"] = torch.tensor([1.0, 0.0, 1.0, 0.5])[None, :, None, None]
    if case == "bool_mask":
        args["attention_mask"] = torch.ones(2, 1, 1, 5, dtype=torch.bool)
    out_o, out_p = compare(orig, patched, lambda m: m(x, **args), train=True)
    assert sdpa_calls == []
    if case == "output_attentions":
        assert len(out_p) == 2 and out_p[1].shape == (2, 4, 5, 5)


@pytest.mark.parametrize("train", [False, True])
def test_bert_whole_model(train, sdpa_calls):
    model = transformers.BertModel(bert_config())
    patched = swap_classes(model, BertSelfAttention, sdpa_bert_self_attention)
    ids = torch.randint(0, 99, (3, 8))
    pad = torch.ones(3, 8, dtype=torch.long)
    pad[1, 6:] = 0
    pad[2, 2:] = 0
    compare(model, patched, lambda m: m(input_ids=ids, attention_mask=pad), train=train,
            dtype=torch.float64)
    assert len(sdpa_calls) == 2  # one per layer


def test_bert_whole_decoder_model_with_cross_attention_and_generation_cache(sdpa_calls):
    cfg = bert_config(is_decoder=True, add_cross_attention=True)
    model = transformers.BertLMHeadModel(cfg)
    patched = swap_classes(model, BertSelfAttention, sdpa_bert_self_attention)
    ids, enc = torch.randint(0, 99, (2, 5)), torch.randn(2, 7, 32)
    enc_mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    mask = torch.tensor([[1] * 5, [0] * 2 + [1] * 3])  # left padding
    call = lambda m: m(input_ids=ids, attention_mask=mask, encoder_hidden_states=enc,  # noqa: E731
                       encoder_attention_mask=enc_mask, use_cache=True)
    with torch.no_grad():  # generation
        out_o, out_p = compare(model, patched, call, backward=False, dtype=torch.float64)
        nxt = torch.randint(0, 99, (2, 1))
        mask2 = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], 1)
        compare(model, patched,
                lambda m: m(input_ids=nxt, attention_mask=mask2, encoder_hidden_states=enc,
                            encoder_attention_mask=enc_mask,
                            past_key_values=(out_o if m is model else out_p).past_key_values),
                backward=False)
    assert len(sdpa_calls) == 8  # 2 layers x (self + cross) x 2 steps
    # With gradients, the left-padded positions' causal rows (which see only padding) send the
    # self-attention to the original; cross-attention keeps SDPA.
    compare(model, patched, call, dtype=torch.float64)
    assert len(sdpa_calls) == 8 + 2


def test_patched_modules_pickle_and_deepcopy():
    _, patched = bert_pair()
    x = torch.randn(1, 3, 32)
    for clone in (copy.deepcopy(patched), pickle.loads(pickle.dumps(patched))):
        assert type(clone) is type(patched)
        torch.testing.assert_close(clone(x)[0], patched(x)[0])


# ------------------------------------------------------------------------------------------ T5


def t5_config(**kw):
    base = dict(vocab_size=99, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=16,
                dropout_rate=0.0, decoder_start_token_id=0)
    base.update(kw)
    return T5Config(**base)


def t5_pair(has_bias=True, **kw):
    cfg = t5_config(**kw)
    orig = T5Attention(cfg, has_relative_attention_bias=has_bias)
    patched = sdpa_t5_attention(T5Attention)(cfg, has_relative_attention_bias=has_bias)
    patched.load_state_dict(orig.state_dict(), strict=True)
    return orig, patched


@pytest.mark.parametrize("has_bias", [True, False])
@pytest.mark.parametrize("train", [False, True])
def test_t5_attention_with_padding_mask(has_bias, train, sdpa_calls):
    orig, patched = t5_pair(has_bias)
    x = torch.randn(2, 6, 32)
    mask = additive(torch.tensor([[1] * 6, [1] * 4 + [0] * 2]))
    out_o, out_p = compare(orig, patched, lambda m: m(x, mask=mask), train=train)
    assert out_p[1] is None and len(out_p) == 3  # (output, present, position_bias)
    assert sdpa_calls and all(c["scale"] == 1.0 for c in sdpa_calls)


def test_t5_position_bias_gradient_reaches_the_relative_embedding():
    orig, patched = t5_pair(True)
    x = torch.randn(2, 5, 32)
    out_o, out_p = compare(orig, patched, lambda m: m(x)[0], train=True)
    assert patched.relative_attention_bias.weight.grad is not None
    assert patched.relative_attention_bias.weight.grad.abs().sum() > 0


def test_t5_falls_back_for_output_attentions_and_head_mask(sdpa_calls):
    orig, patched = t5_pair(True)
    x = torch.randn(2, 4, 32)
    out_o, out_p = compare(orig, patched, lambda m: m(x, output_attentions=True), train=True)
    assert len(out_p) == 4 and out_p[3].shape == (2, 4, 4, 4)
    compare(orig, patched, lambda m: m(x, layer_head_mask=torch.tensor([1.0, 0.0, 1.0, 1.0])[None, :, None, None]),
            train=True)
    assert sdpa_calls == []


def test_t5_pruned_heads(sdpa_calls):
    orig, _ = t5_pair(True)
    orig.prune_heads([1])
    patched = copy.deepcopy(orig)
    patched.__class__ = sdpa_t5_attention(T5Attention)
    x = torch.randn(2, 5, 32)
    compare(orig, patched, lambda m: m(x), train=True)
    assert len(sdpa_calls) == 1


@pytest.mark.parametrize("train", [False, True])
def test_t5_whole_encoder_decoder_model(train, sdpa_calls):
    model = transformers.T5Model(t5_config())
    patched = swap_classes(model, T5Attention, sdpa_t5_attention)
    ids = torch.randint(1, 99, (2, 7))
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    dec = torch.randint(1, 99, (2, 4))
    dec_mask = torch.tensor([[1] * 4, [1] * 3 + [0]])
    compare(model, patched,
            lambda m: m(input_ids=ids, attention_mask=mask, decoder_input_ids=dec,
                        decoder_attention_mask=dec_mask, use_cache=False),
            train=train, reference64=True)
    assert len(sdpa_calls) == 2 + 2 * 2  # encoder self + decoder self and cross (the float64 reference is eager)


def test_t5_incremental_decoding_with_cache(sdpa_calls):
    model = transformers.T5ForConditionalGeneration(t5_config())
    patched = swap_classes(model, T5Attention, sdpa_t5_attention)
    model.eval(), patched.eval()
    ids = torch.randint(1, 99, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    with torch.no_grad():
        enc_o = model.encoder(input_ids=ids, attention_mask=mask)
        enc_p = patched.encoder(input_ids=ids, attention_mask=mask)
        torch.testing.assert_close(enc_p.last_hidden_state, enc_o.last_hidden_state)
        dec = torch.zeros(2, 1, dtype=torch.long)
        past_o = past_p = None
        for _ in range(3):
            o = model(encoder_outputs=enc_o, attention_mask=mask, decoder_input_ids=dec,
                      past_key_values=past_o, use_cache=True)
            p = patched(encoder_outputs=enc_p, attention_mask=mask, decoder_input_ids=dec,
                        past_key_values=past_p, use_cache=True)
            torch.testing.assert_close(p.logits, o.logits)
            for a, b in zip(_tensors(o.past_key_values), _tensors(p.past_key_values)):
                torch.testing.assert_close(b, a)
            past_o, past_p = o.past_key_values, p.past_key_values
            dec = o.logits[:, -1:].argmax(-1)
    assert len(sdpa_calls) == 2 + 3 * 4


# ---------------------------------------------------------------------------------------- GPT-2


def gpt2_config(**kw):
    base = dict(vocab_size=99, n_positions=32, n_embd=32, n_layer=2, n_head=4, attn_pdrop=0.0,
                resid_pdrop=0.0, embd_pdrop=0.0)
    base.update(kw)
    return GPT2Config(**base)


def gpt2_pair(is_cross_attention=False, layer_idx=1, **kw):
    cfg = gpt2_config(**kw)
    orig = GPT2Attention(cfg, is_cross_attention=is_cross_attention, layer_idx=layer_idx)
    patched = sdpa_gpt2_attention(GPT2Attention)(cfg, is_cross_attention=is_cross_attention, layer_idx=layer_idx)
    patched.load_state_dict(orig.state_dict(), strict=True)
    return orig, patched


@pytest.mark.parametrize("train", [False, True])
def test_gpt2_causal_without_padding_uses_is_causal(train, sdpa_calls):
    orig, patched = gpt2_pair()
    x = torch.randn(2, 6, 32)
    compare(orig, patched, lambda m: m(x), train=train)
    assert sdpa_calls[0]["is_causal"] is True and sdpa_calls[0]["attn_mask"] is None


PADS = {
    "right": [[1] * 6, [1] * 4 + [0] * 2],
    "left": [[1] * 6, [0] * 4 + [1] * 2],
    "all-padding-row": [[0] * 6, [1] * 6],
}


@pytest.mark.parametrize("pad", PADS.values(), ids=PADS.keys())
def test_gpt2_causal_with_padding_mask_forward_uses_sdpa(pad, sdpa_calls):
    # Forward values agree on every row, including rows that see only padding.
    orig, patched = gpt2_pair()
    x = torch.randn(2, 6, 32)
    mask = additive(torch.tensor(pad))
    with torch.no_grad():
        compare(orig, patched, lambda m: m(x, attention_mask=mask), backward=False)
    assert len(sdpa_calls) == 1


@pytest.mark.parametrize("pad", PADS.values(), ids=PADS.keys())
def test_gpt2_causal_with_padding_mask_gradients(pad, sdpa_calls):
    # With gradients wanted, rows that see only padding send the call to the original (GPT-2's
    # torch.where blocks gradients that an additive SDPA mask would let through).
    orig, patched = gpt2_pair()
    x = torch.randn(2, 6, 32)
    mask = additive(torch.tensor(pad))
    compare(orig, patched, lambda m: m(x, attention_mask=mask), train=True)
    assert len(sdpa_calls) == (1 if pad is PADS["right"] else 0)


@pytest.mark.parametrize("scale_weights,inverse_idx", [(True, True), (False, False), (False, True)])
def test_gpt2_scaling_options(scale_weights, inverse_idx, sdpa_calls):
    orig, patched = gpt2_pair(layer_idx=2, scale_attn_weights=scale_weights,
                              scale_attn_by_inverse_layer_idx=inverse_idx)
    x = torch.randn(2, 5, 32)
    compare(orig, patched, lambda m: m(x), train=True)
    assert len(sdpa_calls) == 1


def test_gpt2_layer_past_and_use_cache(sdpa_calls):
    orig, patched = gpt2_pair()
    x = torch.randn(2, 5, 32)
    out_o, out_p = compare(orig, patched, lambda m: m(x, use_cache=True), backward=False)
    assert len(out_p[1]) == 2
    step = torch.randn(2, 2, 32)
    mask = additive(torch.tensor([[1] * 7, [0] * 2 + [1] * 5]))
    compare(orig, patched, lambda m: m(step, layer_past=(out_o if m is orig else out_p)[1], use_cache=True),
            backward=False)
    compare(orig, patched,
            lambda m: m(step, layer_past=(out_o if m is orig else out_p)[1], attention_mask=mask),
            backward=False)
    assert len(sdpa_calls) == 3


def test_gpt2_cross_attention(sdpa_calls):
    orig, patched = gpt2_pair(is_cross_attention=True)
    x, enc = torch.randn(2, 4, 32), torch.randn(2, 7, 32)
    enc_mask = additive(torch.tensor([[1] * 7, [1] * 3 + [0] * 4]))
    compare(orig, patched, lambda m: m(x, encoder_hidden_states=enc, encoder_attention_mask=enc_mask), train=True)
    assert sdpa_calls[0]["is_causal"] is False


def test_gpt2_modified_causal_buffer_is_respected(sdpa_calls):
    orig, patched = gpt2_pair()
    with torch.no_grad():  # a local window of 2, as local-attention variants do
        for m in (orig, patched):
            m.bias.copy_(m.bias & ~torch.tril(torch.ones_like(m.bias), diagonal=-2))
    x = torch.randn(2, 6, 32)
    compare(orig, patched, lambda m: m(x), train=True)
    assert sdpa_calls[0]["is_causal"] is False and sdpa_calls[0]["attn_mask"] is not None


@pytest.mark.parametrize("case", ["output_attentions", "head_mask", "reorder_and_upcast_attn"])
def test_gpt2_falls_back_with_equal_results(case, sdpa_calls):
    orig, patched = gpt2_pair(reorder_and_upcast_attn=(case == "reorder_and_upcast_attn"))
    x = torch.randn(2, 5, 32)
    kw = {}
    if case == "output_attentions":
        kw["output_attentions"] = True
    if case == "head_mask":
        kw["head_mask"] = torch.tensor([1.0, 0.0, 1.0, 1.0])[None, :, None, None]
    out_o, out_p = compare(orig, patched, lambda m: m(x, **kw), train=True)
    assert sdpa_calls == []
    if case == "output_attentions":
        assert len(out_p) == 3


def test_gpt2_whole_model_with_left_padding_and_generation_cache(sdpa_calls):
    model = transformers.GPT2LMHeadModel(gpt2_config())
    patched = swap_classes(model, GPT2Attention, sdpa_gpt2_attention)
    ids = torch.randint(0, 99, (2, 6))
    mask = torch.tensor([[1] * 6, [0] * 3 + [1] * 3])
    out_o, out_p = compare(model, patched, lambda m: m(input_ids=ids, attention_mask=mask), train=True,
                           dtype=torch.float64)
    model.eval(), patched.eval()
    with torch.no_grad():
        o = model(input_ids=ids, attention_mask=mask, use_cache=True)
        p = patched(input_ids=ids, attention_mask=mask, use_cache=True)
        nxt = o.logits[:, -1:].argmax(-1)
        mask2 = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], 1)
        o2 = model(input_ids=nxt, attention_mask=mask2, past_key_values=o.past_key_values)
        p2 = patched(input_ids=nxt, attention_mask=mask2, past_key_values=p.past_key_values)
        torch.testing.assert_close(p2.logits, o2.logits)
    assert len(sdpa_calls) == 2 * 2  # the training step fell back (left padding), inference did not


def test_gpt2_whole_model_with_cross_attention(sdpa_calls):
    model = transformers.GPT2Model(gpt2_config(add_cross_attention=True))
    patched = swap_classes(model, GPT2Attention, sdpa_gpt2_attention)
    ids, enc = torch.randint(0, 99, (2, 5)), torch.randn(2, 8, 32)
    enc_mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    compare(model, patched,
            lambda m: m(input_ids=ids, encoder_hidden_states=enc, encoder_attention_mask=enc_mask),
            train=True, dtype=torch.float64)
    assert len(sdpa_calls) == 4


# ------------------------------------------------------------- rows whose every key is masked
#
# A sequence that is all padding gives query rows whose every key is masked (finfo.min).  The eager
# softmax is uniform there; SDPA's fused CPU kernel gives the same values but, in its backward
# pass, recomputes those probabilities from a log-sum-exp that lost its log(keys) to rounding at
# finfo.min, so every gradient through such a row was wrong (BERT: parameters' gradients off by
# up to the size of the gradients themselves).  With gradients wanted the call takes the original;
# without them it keeps SDPA (values equal) except in float16, where finfo.min (-65504) does not
# absorb the scores in the kernel's float32 arithmetic.


def _whole_padding(batch, seq, full):
    pad = torch.ones(batch, seq, dtype=torch.long)
    pad[1, seq - 2:] = 0
    pad[full] = 0  # this sequence is all padding
    return pad


@pytest.mark.parametrize("train", [False, True])
def test_bert_whole_model_with_a_sequence_all_padding_gives_the_original_gradients(train, sdpa_calls):
    model = transformers.BertModel(bert_config())
    patched = swap_classes(model, BertSelfAttention, sdpa_bert_self_attention)
    ids, pad = torch.randint(0, 99, (3, 8)), _whole_padding(3, 8, full=2)
    compare(model, patched, lambda m: m(input_ids=ids, attention_mask=pad), train=train, dtype=torch.float64)
    assert sdpa_calls == []  # the mask hides a whole sequence and gradients are wanted
    with torch.no_grad():  # inference keeps the fast path: the values are the eager ones
        compare(model, patched, lambda m: m(input_ids=ids, attention_mask=pad), backward=False,
                dtype=torch.float64)
    assert len(sdpa_calls) == 2
    compare(model, patched, lambda m: m(input_ids=ids, attention_mask=_whole_padding(3, 8, full=[])),
            train=train, dtype=torch.float64)
    assert len(sdpa_calls) == 4  # ordinary padding: the fast path, gradients and all


def test_bert_cross_attention_to_an_encoder_sequence_all_padding(sdpa_calls):
    model = transformers.BertLMHeadModel(bert_config(is_decoder=True, add_cross_attention=True))
    patched = swap_classes(model, BertSelfAttention, sdpa_bert_self_attention)
    ids, enc = torch.randint(0, 99, (2, 5)), torch.randn(2, 7, 32)
    enc_mask = torch.tensor([[1] * 7, [0] * 7])
    compare(model, patched, lambda m: m(input_ids=ids, encoder_hidden_states=enc, encoder_attention_mask=enc_mask),
            train=True, dtype=torch.float64)
    assert len(sdpa_calls) == 2  # the causal self-attention rows all see a key; cross-attention falls back


def test_bert_half_precision_with_a_sequence_all_padding_takes_the_original(sdpa_calls):
    torch.manual_seed(0)
    orig, patched = bert_pair()
    with torch.no_grad():  # trained-size scores, which float16's finfo.min does not absorb in float32
        weight = orig.query.weight * 40
        for m in (orig, patched):
            m.query.weight.copy_(weight)
    in_dtype(orig, torch.float16), in_dtype(patched, torch.float16)
    x = torch.randn(2, 6, 32)
    full = additive(torch.tensor([[1] * 6, [0] * 6]), torch.float16)
    with torch.no_grad():
        compare(orig, patched, lambda m: m(x, attention_mask=full), backward=False, atol=0, rtol=0)
        assert sdpa_calls == []
        patched(x, attention_mask=additive(torch.tensor([[1] * 6, [1] * 4 + [0] * 2]), torch.float16))
    assert len(sdpa_calls) == 1  # ordinary padding keeps the fast path in float16


def test_gpt2_whole_model_with_a_sequence_all_padding(sdpa_calls):
    model = transformers.GPT2Model(gpt2_config())
    patched = swap_classes(model, GPT2Attention, sdpa_gpt2_attention)
    ids, pad = torch.randint(0, 99, (3, 6)), _whole_padding(3, 6, full=2)
    compare(model, patched, lambda m: m(input_ids=ids, attention_mask=pad), train=True, dtype=torch.float64)
    assert sdpa_calls == []
    with torch.no_grad():
        compare(model, patched, lambda m: m(input_ids=ids, attention_mask=pad), backward=False,
                dtype=torch.float64)
    assert len(sdpa_calls) == 2


def test_gpt2_cross_attention_to_an_encoder_sequence_all_padding(sdpa_calls):
    model = transformers.GPT2Model(gpt2_config(add_cross_attention=True))
    patched = swap_classes(model, GPT2Attention, sdpa_gpt2_attention)
    ids, enc = torch.randint(0, 99, (2, 5)), torch.randn(2, 8, 32)
    enc_mask = torch.tensor([[1] * 8, [0] * 8])
    compare(model, patched,
            lambda m: m(input_ids=ids, encoder_hidden_states=enc, encoder_attention_mask=enc_mask),
            train=True, dtype=torch.float64)
    assert len(sdpa_calls) == 2  # causal self-attention on SDPA, cross-attention on the original
