"""Attention patches on a batch in which one sequence is all padding, on the real transformers
4.34 ``BertModel`` and ``GPT2Model``: ``modeling_bert.py`` / ``modeling_gpt2.py`` of the installed
package, fixed by the real ``fix_text`` with each attention rule alone and with every default
rule together, loaded as a module of the package and compared with the original in float64
(outputs and the gradient of every parameter).

Every key of that sequence's rows is masked (``finfo.min``).  The eager softmax is uniform
there; SDPA's fused kernel agrees in value but, in its backward pass, recomputes those
probabilities from a log-sum-exp that lost its ``log(keys)`` to rounding, so a patch that
called SDPA there gave gradients off by the size of the gradients (ADP001 with ADP010 on BERT:
up to 0.92 in verify's run, 13.7 here).  The patches now take the original path for such a
batch with gradients wanted, and keep SDPA for an ordinary padded batch (SDPA calls counted).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")

from adopter.ruleset import load_rules, select_rules  # noqa: E402
from adopter.synth import fix_text  # noqa: E402

DEFAULT = select_rules(load_rules())


def _patched_module(monkeypatch, tmp_path, original, rule_ids, expected):
    """``original`` (a transformers modeling module) fixed with ``rule_ids`` (of which the
    ``expected`` attention rules must apply), loaded as a sibling module of its package; SDPA
    calls are counted from here on."""
    source = Path(original.__file__).read_text(encoding="utf-8")
    rules = [r for r in DEFAULT if r.id in rule_ids]
    fixed = fix_text(source, original.__file__, rules, original.__name__.rsplit(".", 1)[0])
    assert fixed.error is None and {f.rule for f in fixed.applied} >= set(expected)
    calls = []
    real = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)  # before the module binds it
    name = f"{original.__name__}_adopter_{'_'.join(sorted(rule_ids))}"
    path = tmp_path / f"{name.rsplit('.', 1)[-1]}.py"
    path.write_text(fixed.text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module, calls


def _compare(model, patched, call):
    """Outputs and every parameter's gradient, float64 defaults."""
    model.zero_grad(), patched.zero_grad()
    out_o, out_p = call(model), call(patched)
    torch.testing.assert_close(out_p, out_o)
    grad = torch.randn_like(out_o)
    out_o.backward(grad), out_p.backward(grad)
    theirs = dict(patched.named_parameters())
    for name, param in model.named_parameters():
        if param.grad is None:
            assert theirs[name].grad is None, name
            continue
        torch.testing.assert_close(theirs[name].grad, param.grad, msg=lambda m: f"{name}: {m}")


def _padding(batch, seq, whole):
    pad = torch.ones(batch, seq, dtype=torch.long)
    pad[1, seq - 2:] = 0
    if whole:
        pad[2] = 0  # every position of the third sequence is padding
    return pad


BERT = [("ADP001",), ("ADP010",), tuple(r.id for r in DEFAULT)]


@pytest.mark.parametrize("rule_ids", BERT, ids=["ADP001", "ADP010", "all"])
def test_bert_with_a_sequence_all_padding(monkeypatch, tmp_path, rule_ids):
    from transformers.models.bert import modeling_bert

    module, calls = _patched_module(monkeypatch, tmp_path, modeling_bert, set(rule_ids),
                                    {"ADP001", "ADP010"} & set(rule_ids))
    config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37, max_position_embeddings=16, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = modeling_bert.BertModel(config).double()
    patched = module.BertModel(config).double()
    patched.load_state_dict(model.state_dict(), strict=True)
    ids = torch.randint(0, 99, (3, 8))
    for whole in (True, False):
        calls.clear()
        _compare(model, patched, lambda m: m(input_ids=ids, attention_mask=_padding(3, 8, whole)).last_hidden_state)
        # all padding: the original path in both layers; ordinary padding: SDPA in both
        assert len(calls) == (0 if whole else 2), (whole, len(calls))


def test_gpt2_with_a_sequence_all_padding(monkeypatch, tmp_path):
    from transformers.models.gpt2 import modeling_gpt2

    module, calls = _patched_module(monkeypatch, tmp_path, modeling_gpt2, {r.id for r in DEFAULT}, {"ADP003"})
    config = transformers.GPT2Config(vocab_size=99, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                     attn_pdrop=0.0, resid_pdrop=0.0, embd_pdrop=0.0)
    torch.manual_seed(0)
    model = modeling_gpt2.GPT2Model(config).double()
    patched = module.GPT2Model(config).double()
    patched.load_state_dict(model.state_dict(), strict=True)
    ids = torch.randint(0, 99, (3, 8))
    for whole in (True, False):
        calls.clear()
        _compare(model, patched, lambda m: m(input_ids=ids, attention_mask=_padding(3, 8, whole)).last_hidden_state)
        assert len(calls) == (0 if whole else 2), (whole, len(calls))
