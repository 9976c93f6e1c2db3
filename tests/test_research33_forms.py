"""Forms found while checking the blind batch research33 (GPT/minGPT copies and "from scratch"
packages, a Decision Transformer, an annotated-transformer copy with RoPE, a Matcha-TTS text
encoder, tabular transformers, a windowed/random attention library).  The fixtures are ours.

- A training function named like a method its helper calls on the model (``def train(model,
  ...)``, with an evaluation helper that calls ``model.train()`` and that ``train`` calls): the
  word ``train`` made each function look called by the other, so neither started a flow and
  the optimizer built in ``train`` was read nowhere once the file also held a class (ADP012).
  Near-misses: an optimizer that already chooses ``fused=``, and one built by a helper that a
  method calls by its bare name (still read, once, as that helper).
- A same-file LayerNorm whose variance is ``torch.var(x, dim=-1, correction=0, keepdim=True)``
  (the function form; the method form was read): dropout, residual add, then that norm is
  ADP005.  Near-misses: the unbiased variance (``correction=1``), and a variance over another
  axis.
- A feed-forward whose ``forward`` is wrapped in ``try: ... except: log; raise`` and logs the
  output's shape between its last dropout and the ``return``: its output is still the dropout's
  (ADP005 after it).  Near-misses: a handler that swallows the error and returns something
  else, and a logging line that reads the values (``x.mean()``), not just the shape.
- Rotate-half RoPE written per half (``cat((x1*cos - x2*sin, x1*sin + x2*cos))``) with halves
  sliced at ``self.d_k // 2``, a width the function cannot tie to x's last axis: the
  element-wise products only agree in size when that point splits the axis in two (ADP014).
  Near-misses: the two halves sliced at different points, and a plain concatenation
  ``cat((-x2, x1))`` at such a point (a roll, which proves nothing about halves).
- An attribute bound to ``nn.Dropout(p)`` in one branch of ``__init__`` and to the float rate in
  the other (the branch that uses it as ``dropout_p=``): a call of the attribute runs the layer,
  since calling a float fails, so the attention around it is read (ADP010).  Near-misses: the
  other branch binding an unknown callable (a parameter with no default), and a number passed
  as the attention's input instead of a layer being called.
"""

from __future__ import annotations

from corpus_forms import finding_at, found

# --------------------------------------------------------------------------- ADP012

TRAIN_LOOP = """\
import torch
import torch.nn as nn


class Data:
    def __init__(self, path):
        self.path = path


@torch.no_grad()
def estimate_loss(model, x):
    model.eval()
    out = model(x).mean()
    model.train()
    return out


def train(model, x, learning_rate=1e-3, device="cpu"):
    m = model.to(device)
    optimizer = torch.optim.AdamW(m.parameters(), lr=learning_rate OPTIONS)
    for _ in range(10):
        loss = estimate_loss(m, x)
        loss.backward()
        optimizer.step()
    return m
"""


def test_optimizer_in_a_function_named_like_the_models_train_method_is_read():
    code = TRAIN_LOOP.replace(" OPTIONS", "")
    assert finding_at(code, "ADP012", "optimizer = torch.optim.AdamW(") is not None


def test_optimizer_read_when_the_helper_is_also_called_from_a_script_function():
    # estimate_loss is reached from finetune (a root), so the word "train" in it would have
    # counted train as inlined there
    code = TRAIN_LOOP.replace(" OPTIONS", "") + """

def finetune(model, x):
    return estimate_loss(model, x)
"""
    assert finding_at(code, "ADP012", "optimizer = torch.optim.AdamW(") is not None


def test_optimizer_that_chooses_fused_is_not_reported_there():
    code = TRAIN_LOOP.replace(" OPTIONS", ", fused=True")
    assert found(code, "ADP012") == []


HELPER_OF_A_METHOD = """\
import torch
import torch.nn as nn


def make_optimizer(params):
    return torch.optim.SGD(params, lr=0.1)


class Trainer:
    def __init__(self, model):
        self.model = model

    def fit(self):
        opt = make_optimizer(self.model.parameters())
        self.model.train()
        return opt
"""


def test_helper_a_method_calls_by_name_is_read_once():
    assert len(found(HELPER_OF_A_METHOD, "ADP012")) == 1


# --------------------------------------------------------------------------- ADP005

POST_NORM = """\
import torch
import torch.nn as nn


class LayerNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(d))
        self.beta = nn.Parameter(torch.zeros(d))
        self.eps = eps

    def forward(self, x):
        mean = torch.mean(x, dim=-1, keepdim=True)
        var = VARIANCE
        z = (x - mean) / torch.sqrt(var + self.eps)
        return z * self.gamma + self.beta


class Block(nn.Module):
    def __init__(self, d, p=0.1):
        super().__init__()
        self.ff = nn.Linear(d, d)
        self.norm = LayerNorm(d)
        self.dropout = nn.Dropout(p)

    def forward(self, x):
        t1 = self.ff(x)
        t2 = self.dropout(t1)
        t3 = t2 + x
        return self.norm(t3)
"""


def test_layer_norm_with_the_function_form_of_the_biased_variance():
    code = POST_NORM.replace("VARIANCE", "torch.var(x, dim=-1, correction=0, keepdim=True)")
    assert finding_at(code, "ADP005", "return self.norm(t3)") is not None


def test_layer_norm_with_the_function_form_and_unbiased_false():
    code = POST_NORM.replace("VARIANCE", "torch.var(x, -1, unbiased=False, keepdim=True)")
    assert finding_at(code, "ADP005", "return self.norm(t3)") is not None


def test_unbiased_variance_is_not_layer_norm():
    code = POST_NORM.replace("VARIANCE", "torch.var(x, dim=-1, correction=1, keepdim=True)")
    assert found(code, "ADP005") == []


def test_variance_over_another_axis_is_not_layer_norm():
    code = POST_NORM.replace("VARIANCE", "torch.var(x, dim=1, correction=0, keepdim=True)")
    assert found(code, "ADP005") == []


GUARDED_FF = """\
import torch.nn as nn
from loguru import logger


class FeedForward(nn.Module):
    def __init__(self, dim, p=0.1):
        super().__init__()
        self.fc = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(p)

    def forward(self, x):
        try:
            x = self.fc(x)
            x = self.dropout(x)
            LOG
            return x
        except Exception as e:
            HANDLER


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.ff = FeedForward(dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        out = self.ff(x)
        return self.norm(x + out)
"""


def _guarded(log: str = 'logger.debug(f"shape: {x.shape}")', handler: str = 'logger.error(f"{e}")\n            raise'):
    return GUARDED_FF.replace("LOG", log).replace("HANDLER", handler)


def test_feed_forward_in_a_try_that_reraises_ends_in_its_dropout():
    assert finding_at(_guarded(), "ADP005", "return self.norm(x + out)") is not None


def test_shape_only_logging_between_dropout_and_return_keeps_the_output():
    code = _guarded(log='logger.debug(f"{x.size()} {x.dtype}")')
    assert finding_at(code, "ADP005", "return self.norm(x + out)") is not None


def test_handler_that_returns_another_value_is_another_way_out():
    assert found(_guarded(handler="return None"), "ADP005") == []


def test_logging_that_reads_the_values_is_another_use():
    assert found(_guarded(log='logger.debug(f"mean: {x.mean()}")'), "ADP005") == []


# --------------------------------------------------------------------------- ADP014

PER_HALF = """\
import torch
import torch.nn as nn


class Attention(nn.Module):
    def __init__(self, dim=64, heads=4, n=128):
        super().__init__()
        self.h = heads
        self.d_k = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        angles = torch.outer(torch.arange(n), 10000 ** (-2 * torch.arange(self.d_k // 2) / self.d_k))
        self.register_buffer("cos_table", torch.cos(angles))
        self.register_buffer("sin_table", torch.sin(angles))

    def rope(self, t):
        n = t.shape[2]
        cos = self.cos_table[:n]
        sin = self.sin_table[:n]
        first_half = t[..., : FIRST]
        second_half = t[..., SECOND :]
        ROTATION

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.h, self.d_k).permute(2, 0, 3, 1, 4)
        q = self.rope(q)
        k = self.rope(k)
        return (q @ k.transpose(-2, -1)).softmax(-1) @ v
"""

ROTATE = """a = first_half * cos - second_half * sin
        b = first_half * sin + second_half * cos
        return torch.cat((a, b), -1)"""


def _per_half(first="self.d_k // 2", second="self.d_k // 2", rotation=ROTATE):
    return PER_HALF.replace("FIRST", first).replace("SECOND", second).replace("ROTATION", rotation)


def test_per_half_rotation_sliced_at_a_module_width_is_rope():
    assert finding_at(_per_half(), "ADP014", "a = first_half * cos - second_half * sin") is not None


def test_halves_sliced_at_two_points_are_not_halves():
    assert found(_per_half(second="self.d_k // 4"), "ADP014") == []


def test_a_roll_at_a_module_width_is_not_rotate_half():
    roll = """return torch.cat((-second_half, first_half), -1)"""
    assert found(_per_half(rotation=roll), "ADP014") == []


# --------------------------------------------------------------------------- ADP010

BRANCHED = """\
import torch
import torch.nn as nn
import torch.nn.functional as F


class LocalAttention(nn.Module):
    def __init__(self, dropout: float = 0.0, full: bool = False, OTHER):
        super().__init__()
        if not full:
            self.dropout = nn.Dropout(dropout)
            self.forward = self.forward_manual
        else:
            self.dropout = ELSE
            self.forward = self.forward_fused

    def forward_manual(self, q, k, v):
        a = torch.einsum("b h q d, b h k d -> b h q k", q * q.shape[-1] ** -0.5, k)
        a = a.softmax(dim=-1)
        a = self.dropout(a)
        return torch.einsum("b h q k, b h k d -> b h q d", a, v)

    def forward_fused(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
"""


def _branched(other="gate=None", value="dropout"):
    return BRANCHED.replace("OTHER", other).replace("ELSE", value)


def test_dropout_bound_to_the_rate_in_the_other_branch_is_the_layer_when_called():
    assert finding_at(_branched(), "ADP010", "a = a.softmax(dim=-1)") is not None


def test_dropout_bound_to_a_literal_rate_in_the_other_branch():
    assert finding_at(_branched(value="0.1"), "ADP010", "a = a.softmax(dim=-1)") is not None


def test_other_branch_binding_an_unknown_callable_stays_unknown():
    assert found(_branched(other="gate=None, mixer=None", value="mixer"), "ADP010") == []


HELPER_CHAIN = """\
import torch
import torch.nn as nn


def build(params):
    return torch.optim.Adam(params, lr=1e-3)


def make_optimizer(model):
    return build(model.parameters())


class Trainer:
    def __init__(self, model):
        self.model = model

    def fit(self):
        opt = make_optimizer(self.model)
        self.model.train()
        return opt
"""


def test_functions_a_methods_helper_calls_are_read_once():
    assert len(found(HELPER_CHAIN, "ADP012")) == 1

