"""Forms found missing while checking the blind batch research26 (research reimplementations of
eleven packages new to the corpus: GPTs from scratch, SegFormer, a channel-first transformer, a
LLaMA-style GQA model, set attention, a modular transformer library).  The fixtures are ours.

- A name bound to what a same-class helper returns, then rebound from itself: ``logits =
  self.scores_of(ids)`` (the helper returns its vocabulary head's output) then ``logits =
  rearrange(logits, "b n t -> b t n")`` (or ``.view(-1, n)``) and ``F.cross_entropy(logits,
  ...)``.  The flow copies the helper's result into the name; the step that rebinds the name
  bound its own output through the copy's source (the head's output), so the loss, reading the
  new name, never met the step's output.  The step's output is now bound as the name it is
  written to (matcher, ``_step``); what was bound to the old value through that name still goes
  stale.  An in-place step (``x += pad`` in fix23's probabilities helper, ``masked_fill_``)
  keeps the alias: it changes the tensor both names hold.  Near-misses: the rebinding step is no
  step of the rule (a softmax of the logits before the loss), the loss reads the old value after
  the name is rebound (another name's copy), and no axis moved.
- An activation table read with ``.get``: ``{"silu": F.silu, "geglu": F.gelu}.get(act,
  F.silu)`` bound to an attribute, and a table the class body assigns, read through ``self``
  (``self._ACT.get(act, F.gelu)``, ``self._ACT[act]``): the entries the key may name, and the
  default where the key may be one the table lacks.  Near-misses: a key known to be in the table
  (the default never taken: a fixed ReLU stays a ReLU), a dict that is no activation table, a
  class constant also assigned through ``self`` (not one table for every instance).
- Verify, a grid of the tokens smaller than a kernel: SegFormer-style attention ``forward(x, H,
  W)`` whose keys come from the grid reduced by a strided convolution of a ratio the
  constructor takes without a default (guessed from the kernel size it is handed: 3); the
  input search hands 8 tokens as a 2 x 4 grid, which the kernel does not fit.  The module's own
  error ("Kernel size can't be greater than actual input size") now asks ``inputs.repairs`` for
  the grid grown by the least factor that fits the kernel, with its tokens.  Near-misses:
  integers whose product is not the tokens, a flag among the arguments.
"""

from __future__ import annotations

import textwrap

import torch
from corpus_forms import finding_at, found

from adopter.verify.build import Call
from adopter.verify.inputs import repairs

# ---------------------------------------------------------------- a helper's result rebound

HELPER_LM = """\
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class TinyLM(nn.Module):
    def __init__(self, body, vocab=40, width=16):
        super().__init__()
        self.body = body
        self.embed = nn.Embedding(vocab, width)
        self.head = nn.Linear(width, vocab)

    def scores_of(self, ids):
        hidden = self.body(self.embed(ids))
        out = self.head(hidden)  # site
        return out

    def forward(self, ids):
        inputs, targets = ids[:, :-1], ids[:, 1:]
        logits = self.scores_of(inputs)
        STEP
        return F.cross_entropy(LOSS_IN, targets)
"""


def _lm(step: str, loss_in: str = "logits") -> str:
    return HELPER_LM.replace("STEP", step).replace("LOSS_IN", loss_in)


def test_helper_logits_rebound_by_an_einops_swap_is_found():
    assert finding_at(_lm('logits = rearrange(logits, "b n t -> b t n")'), "ADP015", "# site") is not None


def test_helper_logits_rebound_by_a_transpose_is_found():
    assert finding_at(_lm("logits = logits.transpose(-2, -1)"), "ADP015", "# site") is not None


def test_helper_logits_rebound_by_a_flattening_view_is_found():
    code = _lm("logits = logits.view(-1, 40)", "logits").replace(
        "F.cross_entropy(logits, targets)", "F.cross_entropy(logits, targets.reshape(-1))")
    assert finding_at(code, "ADP015", "# site") is not None


def test_helper_logits_rebound_by_a_softmax_is_not_a_site():
    # probabilities, not logits, reach the loss (no step of the rule)
    code = _lm("logits = logits.softmax(-1).transpose(-2, -1)")
    assert found(code, "ADP015") == []


def test_loss_of_the_copy_read_before_the_rebinding_is_not_confused():
    # the swapped logits go to the loss under another name; the name is then rebound to a
    # constant: the rebinding of an unrelated name must not make a site of anything else
    code = _lm('swapped = rearrange(logits, "b n t -> b t n")\n        logits = torch.zeros(1)', "swapped")
    assert finding_at(code, "ADP015", "# site") is not None
    code = _lm('logits = rearrange(logits, "b n t -> b n t")')
    assert found(code, "ADP015") == []  # no axis moved: positions on axis 1, not the vocabulary


# ---------------------------------------------------------------- activation tables read with .get

GATED = """\
import torch.nn.functional as F
from torch import nn


class GatedFF(nn.Module):
    def __init__(self, width, inner, activation="silu"):
        super().__init__()
        self.gate = nn.Linear(width, inner)
        self.up = nn.Linear(width, inner)
        self.down = nn.Linear(inner, width)
        choices = {"silu": F.silu, "geglu": F.gelu}
        self.act = choices.get(KEY, DEFAULT)

    def forward(self, x):
        return self.down(self.act(self.gate(x)) * self.up(x))  # site
"""


def _gated(key: str = "activation", default: str = "F.silu") -> str:
    return GATED.replace("KEY", key).replace("DEFAULT", default)


def test_local_table_get_with_a_runtime_key_is_swiglu_and_maybe_gelu():
    code = _gated()
    assert finding_at(code, "ADP013", "# site") is not None
    assert finding_at(code, "ADP006", "# site") is not None  # 'geglu' gives F.gelu


def test_local_table_get_of_a_known_key_never_takes_the_default():
    # "silu" is in the table: a GELU default is never taken, so no bias-GELU
    code = _gated('"silu"', "F.gelu")
    assert finding_at(code, "ADP013", "# site") is not None
    assert found(code.replace('"geglu": F.gelu', '"relu": F.relu'), "ADP006") == []


def test_get_of_a_dict_that_is_no_activation_table_is_not_an_activation():
    code = _gated().replace('choices = {"silu": F.silu, "geglu": F.gelu}', 'choices = {"silu": 1, "geglu": 2}') \
        .replace("self.act = choices.get(activation, F.silu)", "self.act = nn.Identity() if choices.get(activation) else nn.ReLU()")
    assert found(code, "ADP013") == [] and found(code, "ADP006") == []


HEAD = """\
import torch
import torch.nn.functional as F
from typing import ClassVar
from torch import nn


class Head(nn.Module):
    ACTS: ClassVar = {"gelu": F.gelu, "relu": F.relu}

    def __init__(self, width, classes, activation="gelu"):
        super().__init__()
        self.dense = nn.Linear(width, width)
        if isinstance(activation, str):
            self.act = LOOKUP
        else:
            self.act = activation
        self.out = nn.Linear(width, classes)

    def forward(self, x):
        x = self.act(self.dense(x))  # site
        return self.out(x)
"""


def test_class_table_get_is_maybe_gelu():
    assert finding_at(HEAD.replace("LOOKUP", "self.ACTS.get(activation, F.gelu)"), "ADP006", "# site") is not None


def test_class_table_subscript_is_maybe_gelu():
    assert finding_at(HEAD.replace("LOOKUP", "self.ACTS[activation]"), "ADP006", "# site") is not None


def test_class_table_without_gelu_is_not_bias_gelu():
    code = HEAD.replace("LOOKUP", "self.ACTS.get(activation, F.relu)").replace(
        '{"gelu": F.gelu, "relu": F.relu}', '{"tanh": torch.tanh, "relu": F.relu}').replace(
        'activation="gelu"', 'activation="relu"')
    assert found(code, "ADP006") == []


def test_class_table_an_instance_rebinds_is_not_read_as_the_class_table():
    # __init__ assigns self.ACTS a table without GELU, which the lookup reads (the class's,
    # with GELU, is shadowed): "gelu" is not in it, so the ReLU default is taken
    code = HEAD.replace("LOOKUP", "self.ACTS.get(activation, F.relu)").replace(
        "        self.dense = nn.Linear(width, width)\n",
        '        self.ACTS = {"relu": F.relu, "tanh": torch.tanh}\n        self.dense = nn.Linear(width, width)\n')
    assert found(code, "ADP006") == []


# ---------------------------------------------------------------- verify: a grid smaller than a kernel

KERNEL_ERROR = ("Calculated padded input size per channel: (2 x 4). Kernel size: (3 x 3). "
                "Kernel size can't be greater than actual input size")


def test_a_grid_smaller_than_a_kernel_is_grown_with_its_tokens():
    x = torch.randn(2, 8, 16)  # 8 tokens = a 2 x 4 grid handed as two integers
    (call,) = repairs(Call((x, 2, 4)), RuntimeError(KERNEL_ERROR))
    grown, h, w = call.args
    assert (h, w) == (4, 8) and grown.shape == (2, 32, 16)


def test_integers_that_are_not_the_tokens_grid_are_left_alone():
    x = torch.randn(2, 8, 16)
    assert repairs(Call((x, 3, 4)), RuntimeError(KERNEL_ERROR)) == []  # 3 * 4 is not 8 tokens
    assert repairs(Call((x, True, 8)), RuntimeError(KERNEL_ERROR)) == []  # a flag is no side


REDUCED = '''
import torch
from torch import nn


class Reduced(nn.Module):
    """Attention whose keys and values come from the token grid reduced by a strided conv."""

    def __init__(self, dim, heads, ratio):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.reduce = nn.Conv2d(dim, dim, ratio, ratio)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, H, W):
        b, n, c = x.shape
        q = self.q(x).reshape(b, n, self.heads, c // self.heads).permute(0, 2, 1, 3)
        grid = x.permute(0, 2, 1).reshape(b, c, H, W)
        kept = self.norm(self.reduce(grid).reshape(b, c, -1).permute(0, 2, 1))
        k, v = self.kv(kept).reshape(b, -1, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        return self.out((attn @ v).transpose(1, 2).reshape(b, n, c))
'''


def test_reduced_attention_over_a_grid_of_the_tokens_verifies(tmp_path):
    from adopter.config import Config
    from adopter.ruleset import load_rules, select_rules
    from adopter.verify.core import verify_file

    path = tmp_path / "reduced.py"
    path.write_text(textwrap.dedent(REDUCED))
    results = verify_file(str(path), select_rules(load_rules(), ["ADP010"]), Config(), benchmark=False)
    verdicts = [(r.verdict, r.reason) for r in results if r.rule == "ADP010"]
    assert verdicts and all(v == "pass" for v, _ in verdicts), verdicts
