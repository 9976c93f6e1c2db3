"""Forms found missing while checking the blind batch corpus16a (research LLM and encoder ports
from nine packages new to the corpus).  The fixtures are ours.

- ADP005: a same-file attention module whose forward ends in its output dropout, called with
  more than the input (``self.attn(x, mask)``): its output is still that dropout's, whatever
  else the call passes.
- ADP006: a hand-written tanh GELU whose constant is a 0-d tensor made on the input's device
  (``torch.tensor(2.0 / torch.pi, device=x.device)``: where it is made does not change it);
  an activation class taken from a factory that returns a tuple (``act, scale =
  get_act(name)``); a GELU function a factory of a sibling module returns.
- ADP015: a vocabulary-sized bias added to a bias-free head's logits before the cross-entropy
  (that is a head with a bias), and logits upcast after the view to rows.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from corpus_forms import covered, findings, line_of

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.structure import package_of
from adopter.synth import fix_text

RULES = load_rules()

# ---------------------------------------------------------------- ADP005: extra call arguments

POST_NORM = textwrap.dedent("""\
    import torch
    from torch import nn


    class Heads(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.heads = nn.ModuleList([nn.Linear(d, d // n) for _ in range(n)])
            self.proj = nn.Linear(d, d)
            self.drop = nn.Dropout(0.1)

        def forward(self, x, mask=None):
            x = torch.cat([h(x) for h in self.heads], dim=-1)
            x = self.proj(x)
            x = self.drop(x)
            return x


    class Mixer(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.proj = nn.Linear(d, d)
            self.drop = nn.Dropout(0.1)

        def forward(self, x, mask=None):
            return self.drop(self.proj(x)) + 1.0


    class Block(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.attn = Heads(d, n)
            self.ln = nn.LayerNorm(d)

        def forward(self, x, mask=None):
            x = x + self.attn(x, mask)
            x = self.ln(x)
            return x


    class KeepsSum(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.attn = Heads(d, n)
            self.ln = nn.LayerNorm(d)

        def forward(self, x, mask=None):
            s = x + self.attn(x, mask=mask)
            return self.ln(s), s


    class NotDropout(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.mix = Mixer(d)
            self.ln = nn.LayerNorm(d)

        def forward(self, x, mask=None):
            return self.ln(x + self.mix(x, mask))


    class Gate(nn.Module):
        def forward(self, x, mask=None):
            return x if mask is None else x * mask


    class MaybeDropout(nn.Module):
        def __init__(self, d, p=0.1, gated=False):
            super().__init__()
            self.drop = Gate() if gated else nn.Dropout(p)
            self.ln = nn.LayerNorm(d)

        def forward(self, x, h, mask=None):
            return self.ln(x + self.drop(h, mask))
""")


def test_module_ending_in_dropout_called_with_a_mask_is_a_site():
    assert covered(POST_NORM, "x = self.ln(x)", "ADP005")


def test_near_misses_extra_arguments():
    # the sum is returned too; the called module adds a constant after its dropout; a layer
    # that may be an nn.Dropout, called with two arguments (only its other class takes them)
    assert not covered(POST_NORM, "return self.ln(s), s", "ADP005")
    assert not covered(POST_NORM, "return self.ln(x + self.mix(x, mask))", "ADP005")
    assert not covered(POST_NORM, "return self.ln(x + self.drop(h, mask))", "ADP005")
    assert len(findings(POST_NORM, "ADP005")) == 1


def test_extra_arguments_site_is_reported_not_rewritten():
    result = fix_text(POST_NORM, "model.py", select_rules(RULES, ["ADP005"]))
    assert result.error is None
    assert result.text == POST_NORM


# ---------------------------------------------------------------- ADP006: GELU forms

GELU_DEVICE = textwrap.dedent("""\
    import torch
    from torch import nn


    class TanhGELU(nn.Module):
        def forward(self, x):
            return 0.5 * x * (1 + torch.tanh(
                torch.sqrt(torch.tensor(2.0 / torch.pi, device=x.device)) * (x + 0.044715 * (x ** 3))))


    class IntConstant(nn.Module):
        def forward(self, x):
            return 0.5 * x * (1 + torch.tanh(
                torch.sqrt(torch.tensor(2.0 / torch.pi, dtype=torch.int64)) * (x + 0.044715 * (x ** 3))))


    class FeedForward(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(d, 4 * d),
                TanhGELU(),
                nn.Linear(4 * d, d),
            )

        def forward(self, x):
            return self.layers(x)


    class Truncated(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.layers = nn.Sequential(
                nn.Linear(d, 4 * d),
                IntConstant(),
                nn.Linear(4 * d, d),
            )

        def forward(self, x):
            return self.layers(x)
""")


def test_gelu_constant_made_on_the_input_device():
    assert covered(GELU_DEVICE, "TanhGELU(),", "ADP006")


def test_gelu_constant_with_a_dtype_is_not_read_as_its_number():
    # torch.tensor(0.797, dtype=torch.int64) holds 0: no GELU
    assert not covered(GELU_DEVICE, "IntConstant(),", "ADP006")
    assert len(findings(GELU_DEVICE, "ADP006")) == 1


TUPLE_FACTORY = textwrap.dedent("""\
    import torch
    from torch import nn
    import torch.nn.functional as F


    class SwiGLU(nn.Module):
        def forward(self, x):
            x, gate = x.chunk(2, dim=-1)
            return F.silu(gate) * x


    def get_act(name):
        if name == "gelu":
            return nn.GELU, 1
        elif name == "swiglu":
            return SwiGLU, 2


    def get_relu(name):
        return nn.ReLU, 1


    def scale_first(name):
        return 1, nn.GELU


    class Encoder(nn.Module):
        def __init__(self, d, act_name: str = "gelu"):
            super().__init__()
            act, scale = get_act(act_name)
            self.ff = nn.Sequential(
                nn.Linear(d, d * 4 * scale),
                act(),
                nn.Linear(d * 4, d),
            )

        def forward(self, x):
            return self.ff(x)


    class ReluEncoder(nn.Module):
        def __init__(self, d):
            super().__init__()
            act, scale = get_relu("relu")
            self.ff = nn.Sequential(nn.Linear(d, d), act(), nn.Linear(d, d))

        def forward(self, x):
            return self.ff(x)


    class Swapped(nn.Module):
        def __init__(self, d):
            super().__init__()
            scale, act = get_relu("relu")
            self.ff = nn.Sequential(nn.Linear(d, d), act, nn.Linear(d, d))
            scale2, act2 = scale_first("gelu")

        def forward(self, x):
            return self.ff(x)
""")


def test_activation_class_from_a_tuple_returning_factory():
    assert covered(TUPLE_FACTORY, "            act(),", "ADP006")


def test_tuple_factory_near_misses():
    # a ReLU at that place of the tuple; the other element of the tuple (a number)
    assert len(findings(TUPLE_FACTORY, "ADP006")) == 1


# a sibling module's factory returning a same-module GELU function, on a package on disk

ACTIVATIONS = """\
import math

import torch


def gelu(x):
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def get_activation_fn(name):
    if name == "gelu":
        return gelu
    elif name == "relu":
        return torch.nn.functional.relu
    raise ValueError(name)


def get_relu_fn(name):
    return torch.nn.functional.relu
"""

ENCODER = """\
from torch import nn

from .activations import get_activation_fn, get_relu_fn


class Intermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = get_activation_fn(config.hidden_act)

    def forward(self, hidden_states):
        hidden_states = self.dense(hidden_states)
        hidden_states = self.act(hidden_states)
        return hidden_states


class ReluIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = get_relu_fn(config.hidden_act)

    def forward(self, hidden_states):
        return self.act(self.dense(hidden_states))
"""


def _package(tmp_path: Path) -> Path:
    for name, text in {"enc/__init__.py": "", "enc/activations.py": ACTIVATIONS, "enc/encoder.py": ENCODER}.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "enc" / "encoder.py"


def test_gelu_function_from_a_sibling_factory(tmp_path):
    path = _package(tmp_path)
    text = path.read_text()
    got = [f for f in analyze(text, str(path), select_rules(RULES, ["ADP006"]), package_of(str(path))).findings
           if f.rule == "ADP006"]
    lines = [(f.line, f.end_line) for f in got]
    at = line_of(text, "hidden_states = self.act(hidden_states)")
    assert any(a <= at <= b for a, b in lines)
    # the sibling factory that only returns relu gives no site
    assert len(got) == 1
    # a function held as a value: passed to the kernel in eager code, the original under
    # TorchScript (fixrate2, session 34)
    result = fix_text(text, str(path), select_rules(RULES, ["ADP006"]), package_of(str(path)))
    assert result.error is None and [f.rule for f in result.applied] == ["ADP006"]
    assert ("hidden_states = (self.act(self.dense(hidden_states)) if is_scripting() "
            "else bias_gelu(hidden_states, self.dense, self.act))") in result.text


# ---------------------------------------------------------------- ADP015: bias, late cast

HEADS = textwrap.dedent("""\
    import torch
    from torch import nn
    import torch.nn.functional as F


    class MLMHead(nn.Module):
        def __init__(self, hidden_size, vocab_size):
            super().__init__()
            self.transform = nn.Linear(hidden_size, hidden_size)
            self.decoder = nn.Linear(hidden_size, vocab_size, bias=False)
            self.bias = nn.Parameter(torch.zeros(vocab_size))
            self.vocab_size = vocab_size

        def forward(self, hidden_states, targets=None):
            hidden_states = self.transform(hidden_states)
            hidden_states = self.decoder(hidden_states) + self.bias
            outputs = (hidden_states,)
            if targets is not None:
                loss_fct = nn.CrossEntropyLoss(ignore_index=-1)
                loss = loss_fct(hidden_states.view(-1, self.vocab_size), targets.view(-1))
                outputs = (loss,) + outputs
            return outputs


    class TokenTagger(nn.Module):
        def __init__(self, hidden_size, num_labels):
            super().__init__()
            self.classify = nn.Linear(hidden_size, num_labels, bias=False)
            self.bias = nn.Parameter(torch.zeros(num_labels))
            self.num_labels = num_labels

        def forward(self, hidden_states, targets=None):
            logits = self.classify(hidden_states) + self.bias
            if targets is None:
                return logits
            return F.cross_entropy(logits.view(-1, self.num_labels), targets.view(-1))
""")

# (a file that embeds no tokens: its heads are read loosely, a Linear then a view to a size)

CAST_HEADS = textwrap.dedent("""\
    import torch
    from torch import nn
    import torch.nn.functional as F


    class CausalLM(nn.Module):
        def __init__(self, vocab_size, dim, tie=True):
            super().__init__()
            self.tie = tie
            self.wte = nn.Embedding(vocab_size, dim)
            if not tie:
                self.lm_head = nn.Linear(dim, vocab_size, bias=False)

        def forward(self, idx, labels=None):
            h = self.wte(idx)
            if self.tie:
                logits = F.linear(h, self.wte.weight)
            else:
                logits = self.lm_head(h)
            loss = None
            if labels is not None:
                shift_logits = logits[..., :-1, :].contiguous()
                shift_labels = labels[..., 1:].contiguous()
                loss_fct = nn.CrossEntropyLoss(ignore_index=-100)
                with torch.autocast("cuda", enabled=False):
                    loss = loss_fct(shift_logits.view(-1, shift_logits.size(-1)).to(torch.float32),
                                    shift_labels.view(-1))
            return loss, logits


    class Sampler(nn.Module):
        def __init__(self, vocab_size, dim):
            super().__init__()
            self.wte = nn.Embedding(vocab_size, dim)
            self.lm_head = nn.Linear(dim, vocab_size, bias=False)

        def forward(self, idx):
            logits = self.lm_head(self.wte(idx))
            return logits[..., -1, :].contiguous().view(-1, logits.size(-1)).to(torch.float32)
""")


def test_head_with_a_bias_added_before_the_loss():
    assert "Embedding" not in HEADS
    assert covered(HEADS, "hidden_states = self.decoder(hidden_states) + self.bias", "ADP015")


def test_logits_upcast_after_the_view_to_rows():
    assert covered(CAST_HEADS, "logits = F.linear(h, self.wte.weight)", "ADP015")
    assert covered(CAST_HEADS, "logits = self.lm_head(h)", "ADP015")


def test_head_near_misses():
    # a tagger over num_labels; logits upcast and returned without a loss
    assert not covered(HEADS, "logits = self.classify(hidden_states) + self.bias", "ADP015")
    assert len(findings(HEADS, "ADP015")) == 1
    assert not covered(CAST_HEADS, "logits = self.lm_head(self.wte(idx))", "ADP015")
    assert len(findings(CAST_HEADS, "ADP015")) == 2
