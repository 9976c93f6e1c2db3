"""Forms found missing while checking the blind batch corpus14c (newer Hugging Face model files
and research LLM/encoder code: BERT/GPT reimplementations, T5 and LLaMA ports, training
frameworks' layers): each test states the semantic fact the engine now reads, and a near-miss it
must still leave alone.  The fixtures are ours."""

from __future__ import annotations

from corpus_forms import finding_at as _finding
from corpus_forms import line_of as _line
from corpus_forms import rules as _rules

from adopter.engine import analyze
from adopter.structure import package_of

# ----------------------------------------------------------------- a reduction's axis= keyword

RMS_AXIS = """\
import torch
from torch import nn


class ScaleNormNoCenter(nn.Module):
    def __init__(self, width, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(width))

    def forward(self, h):
        return (
            h
            / torch.sqrt(torch.mean(torch.square(h), axis=-1, keepdim=True) + self.eps)  # last
            * self.gain
        )


class OverTime(nn.Module):
    def __init__(self, eps=1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, h):
        return h / torch.sqrt(torch.mean(torch.square(h), axis=1, keepdim=True) + self.eps)  # time
"""


def test_mean_over_axis_keyword_is_rms_norm():
    # torch reads axis= as dim= (its NumPy alias): the mean of the square over axis=-1 is the
    # RMS statistic; over axis=1 it is a mean over another axis and stays unreported
    assert _finding(RMS_AXIS, "ADP011", "# last") is not None
    assert _finding(RMS_AXIS, "ADP011", "# time") is None


# ----------------------------------------------------------------- a head over the vocabulary less one

VOCAB_LESS_ONE = """\
from torch import nn
from torch.nn import CrossEntropyLoss


class PixelLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.WIDTH, bias=False)

    def forward(self, ids, labels=None):
        logits = self.lm_head(self.wte(ids))  # head
        loss = None
        if labels is not None:
            shift_logits = logits[..., :-1, :].contiguous()
            shift_labels = labels[..., 1:].contiguous()
            loss_fct = CrossEntropyLoss()
            loss = loss_fct(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1))
        return loss, logits
"""


def test_head_over_the_vocabulary_less_a_token():
    # a Linear to the embedding's size less one (ImageGPT never predicts its start token) maps
    # to the vocabulary: its shifted per-position loss is the pair; the same Linear to the
    # number of labels less one is a classifier
    assert (
        _finding(VOCAB_LESS_ONE.replace("WIDTH", "vocab_size - 1"), "ADP015", "# head")
        is not None
    )
    assert (
        _finding(VOCAB_LESS_ONE.replace("WIDTH", "num_labels - 1"), "ADP015", "# head")
        is None
    )


# ----------------------------------------------------------------- a head module adding its own bias

BIAS_HEAD = """\
import torch
from torch import nn
from torch.nn import CrossEntropyLoss


class Embed(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.tokens = nn.Embedding(config.vocab_size, config.hidden_size)

    def forward(self, ids):
        return self.tokens(ids)


class MaskedHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.shortcut = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, h):
        h = self.norm(torch.tanh(self.dense(h)))
        h = self.decoder(h) + self.bias
        return h


class MaskedLM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embed = Embed(config)
        self.head = MaskedHead(config)

    def forward(self, ids, labels=None):
        scores = self.head(self.embed(ids))  # head
        loss = None
        if labels is not None:
            loss = CrossEntropyLoss()(scores.view(-1, self.config.vocab_size), labels.view(-1))
        return loss, scores
"""


def test_head_module_returning_its_decoder_plus_a_held_bias():
    # a same-file head whose forward returns its vocabulary Linear's output plus a bias vector it
    # holds is a vocabulary head; plus another layer's output it is a sum of two projections
    assert _finding(BIAS_HEAD, "ADP015", "# head") is not None
    two = BIAS_HEAD.replace(
        "self.decoder(h) + self.bias", "self.decoder(h) + self.shortcut(h)"
    )
    assert _finding(two, "ADP015", "# head") is None


# ----------------------------------------------------------------- names that only copy the input

ALIASED_INPUT = """\
import math
import torch
from torch import nn


class ConvSelfAttention(nn.Module):
    def __init__(self, d, heads, rotate=False):
        super().__init__()
        self.heads = heads
        self.d = d // heads
        self.rotate = rotate
        self.linear_q = nn.Linear(d, d)
        self.linear_k = nn.Linear(d, d)
        self.linear_v = nn.Linear(d, d)
        self.linear_out = nn.Linear(d, d)

    def forward(self, hidden_states, angles=None):
        b, n, _ = hidden_states.size()
        query_key_states = hidden_states
        value_states = hidden_states
        query = self.linear_q(query_key_states).view(b, -1, self.heads, self.d)  # q
        key = self.linear_k(query_key_states).view(b, -1, self.heads, self.d)
        value = self.linear_v(value_states).view(b, -1, self.heads, self.d)
        query, key, value = query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)
        w = torch.softmax(torch.matmul(query, key.transpose(-2, -1)) / math.sqrt(self.d), dim=-1)
        out = torch.matmul(w, value).transpose(1, 2).reshape(b, -1, self.heads * self.d)
        return self.linear_out(out)
"""

ROTATED_COPY = """\
        if self.rotate:
            query_key_states = query_key_states * angles
"""


def test_projections_of_names_that_only_copy_the_input():
    # q/k of `query_key_states = hidden_states`, v of `value_states = hidden_states`, both
    # assigned once from an argument nothing reassigns: one input for the three; when the
    # query/key copy is replaced on some path (a rotation under a flag), the inputs differ
    assert _finding(ALIASED_INPUT, "ADP009", "# q") is not None
    rotated = ALIASED_INPUT.replace(
        "        value_states = hidden_states\n",
        "        value_states = hidden_states\n" + ROTATED_COPY,
    )
    assert _finding(rotated, "ADP009", "# q") is None


OPTIONAL_QUERY = """\
from torch import nn


class DisentangledLike(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.query_proj = nn.Linear(d, d)
        self.key_proj = nn.Linear(d, d)
        self.value_proj = nn.Linear(d, d)

    def forward(self, hidden_states, query_states=None):
        if query_states is None:
            query_states = hidden_states
        q = self.query_proj(query_states)  # q
        k = self.key_proj(hidden_states)
        v = self.value_proj(hidden_states)
        return q, k, v
"""


def test_a_parameter_set_to_the_input_only_when_absent_is_no_copy():
    # `if query_states is None: query_states = hidden_states`: the query input is the caller's
    # tensor on the other path, chosen at run time
    assert _finding(OPTIONAL_QUERY, "ADP009", "# q") is None


# ----------------------------------------------------------------- a layer built by skip_init

SKIP_INIT = """\
import torch
from torch import nn
from torch.nn.utils import skip_init


class Attention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.lk = skip_init(KIND, d, d, bias=False)
        self.lv = skip_init(nn.Linear, in_features=d, out_features=d, bias=False)
        self.lq = skip_init(nn.Linear, in_features=d, out_features=d, bias=False)

    def forward(self, x):
        q, k, v = (
            self.lq(x),  # q
            self.lk(x),
            self.lv(x),
        )
        return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
"""


def test_skip_init_builds_the_class_it_is_given():
    # torch.nn.utils.skip_init(cls, *args) is cls(*args) with its parameters left uninitialised:
    # three Linears of one input; a Bilinear given to it is no Linear projection
    assert _finding(SKIP_INIT.replace("KIND", "nn.Linear"), "ADP009", "# q") is not None
    assert (
        _finding(
            SKIP_INIT.replace("KIND, d, d", "nn.Bilinear, d, d, d"), "ADP009", "# q"
        )
        is None
    )


# ----------------------------------------------------------------- a class defined as an import's fallback

FALLBACK_NORM = """\
import torch
from torch import nn

try:
    from fastnorm import FusedLayerNorm as TfLayerNorm
except ImportError:

    class TfLayerNorm(nn.Module):
        def __init__(self, hidden_size, eps=1e-12):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(hidden_size))
            self.bias = nn.Parameter(torch.zeros(hidden_size))
            self.variance_epsilon = eps

        def forward(self, x):
            BODY


class SelfOutput(nn.Module):
    def __init__(self, d, p):
        super().__init__()
        self.dense = nn.Linear(d, d)
        self.norm = TfLayerNorm(d, eps=1e-12)
        self.dropout = nn.Dropout(p)

    def forward(self, hidden_states, input_tensor):
        hidden_states = self.dropout(self.dense(hidden_states))
        return self.norm(hidden_states + input_tensor)  # norm
"""

LAYER_NORM_BODY = (
    "u = x.mean(-1, keepdim=True)\n"
    "            s = (x - u).pow(2).mean(-1, keepdim=True)\n"
    "            x = (x - u) / torch.sqrt(s + self.variance_epsilon)\n"
    "            return self.weight * x + self.bias"
)


def test_a_class_defined_where_its_import_fails_is_what_the_name_computes():
    # `try: import a fused LayerNorm as N / except ImportError: class N: <a LayerNorm written
    # out>`: the fallback is a drop-in for the import, and the file shows its computation; a
    # fallback that only raises computes nothing the rule knows
    assert (
        _finding(FALLBACK_NORM.replace("BODY", LAYER_NORM_BODY), "ADP005", "# norm")
        is not None
    )
    stub = FALLBACK_NORM.replace("BODY", 'raise ImportError("install fastnorm")')
    assert _finding(stub, "ADP005", "# norm") is None


# ----------------------------------------------------------------- a head module's logits viewed over the vocabulary

LINEAR_ENDING_HEADS = """\
import torch
from torch import nn
from torch.nn import CrossEntropyLoss


class Transform(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size)

    def forward(self, h):
        return self.norm(torch.tanh(self.dense(h)))


class PredictionHead(nn.Module):
    def __init__(self, config, embedding_weights):
        super().__init__()
        self.transform = Transform(config)
        self.decoder = nn.Linear(embedding_weights.size(1), embedding_weights.size(0), bias=False)
        self.decoder.weight = embedding_weights
        self.bias = nn.Parameter(torch.zeros(embedding_weights.size(0)))

    def forward(self, h):
        h = self.transform(h)
        h = self.decoder(h) + self.bias
        return h


class PretrainHeads(nn.Module):
    def __init__(self, config, embedding_weights):
        super().__init__()
        self.predictions = PredictionHead(config, embedding_weights)
        self.pair = nn.Linear(config.hidden_size, 2)

    def forward(self, seq, pooled):
        return self.predictions(seq), self.pair(pooled)


class MaskedLM(nn.Module):
    def __init__(self, config, encoder, weights):
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.cls = PredictionHead(config, weights)

    def forward(self, ids, labels=None):
        scores = self.cls(self.encoder(ids))  # mlm
        if labels is not None:
            return CrossEntropyLoss(ignore_index=-1)(scores.view(-1, self.config.vocab_size), labels.view(-1))
        return scores


class Pretraining(nn.Module):
    def __init__(self, config, encoder, weights):
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.cls = PretrainHeads(config, weights)

    def forward(self, ids, labels, next_label):
        seq, pooled = self.encoder(ids)
        scores, pair = self.cls(seq, pooled)  # both
        loss_fct = CrossEntropyLoss(ignore_index=-1)
        return loss_fct(scores.view(-1, self.config.vocab_size), labels.view(-1)) + loss_fct(
            pair.view(-1, 2), next_label.view(-1)
        )


class ClassHead(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, h):
        return self.out_proj(torch.tanh(self.dense(h)))


class Classify(nn.Module):
    def __init__(self, config, encoder):
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.cls = ClassHead(config)

    def forward(self, ids, labels):
        logits = self.cls(self.encoder(ids))  # classes
        return CrossEntropyLoss()(logits.view(-1, self.config.num_labels), labels.view(-1))
"""


def test_a_head_module_ending_in_a_linear_viewed_over_the_vocabulary():
    # a same-file head whose forward returns its (tied) decoder Linear's output plus a bias, or
    # a pair led by such a head's output, flattened over config.vocab_size into the
    # cross-entropy: the LM head pair; a head ending in a Linear to the labels, viewed over
    # num_labels, is a classifier
    assert _finding(LINEAR_ENDING_HEADS, "ADP015", "# mlm") is not None
    assert _finding(LINEAR_ENDING_HEADS, "ADP015", "# both") is not None
    assert _finding(LINEAR_ENDING_HEADS, "ADP015", "# classes") is None


# ----------------------------------------------------------------- GPT-2's Conv1D written in the file

ADDMM_CONV1D = """\
import math

import torch
from torch import nn
from torch.nn.parameter import Parameter


def gelu(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * torch.pow(x, 3))))


ACTS = {"relu": torch.relu, "gelu": gelu}


class Conv1D(nn.Module):
    def __init__(self, nf, rf, nx):
        super().__init__()
        self.rf = rf
        self.nf = nf
        if rf == 1:
            w = torch.empty(nx, nf)
            nn.init.normal_(w, std=0.02)
            self.weight = Parameter(w)
            self.bias = Parameter(torch.zeros(nf))
        else:
            raise NotImplementedError

    def forward(self, x):
        if self.rf == 1:
            size_out = x.size()[:-1] + (self.nf,)
            x = torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
            x = x.view(*size_out)
        else:
            raise NotImplementedError
        return x


class MLP(nn.Module):
    def __init__(self, n_state, config):
        super().__init__()
        self.c_fc = Conv1D(n_state, 1, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, 1, n_state)
        self.act = ACTS[config.afn]

    def forward(self, x):
        h = self.act(self.c_fc(x))  # act
        return self.c_proj(h)
"""


def test_a_module_computing_addmm_of_its_flattened_input_is_a_linear():
    # forward: addmm(self.bias, x.view(-1, x.size(-1)), self.weight) viewed back (under an if
    # whose other branch raises): a Linear with an (in, out) weight, so its output into a
    # GELU-capable activation is the bias-GELU pair (reported, not fixed); the weight on the
    # left of the product mixes rows, not features
    assert _finding(ADDMM_CONV1D, "ADP006", "# act") is not None
    rows = ADDMM_CONV1D.replace(
        "torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)",
        "torch.addmm(self.bias, self.weight, x.view(-1, x.size(-1)))",
    )
    assert _finding(rows, "ADP006", "# act") is None


# ----------------------------------------------------------------- a sibling module's import fallback

SIBLING_NORMS = """\
import torch
from torch import nn

try:
    from fastnorm import FusedLayerNorm as TfLayerNorm
except ImportError:

    class TfLayerNorm(nn.Module):
        def __init__(self, hidden_size, eps=1e-12):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(hidden_size))
            self.bias = nn.Parameter(torch.zeros(hidden_size))
            self.variance_epsilon = eps

        def forward(self, x):
            u = x.mean(-1, keepdim=True)
            s = (x - u).pow(2).mean(-1, keepdim=True)
            x = (x - u) / torch.sqrt(s + self.variance_epsilon)
            return self.weight * x + self.bias


try:
    from fastnorm import FusedRMSNorm as OtherNorm
except ImportError:
    OtherNorm = None
"""

SIBLING_BLOCK = """\
from torch import nn

from .norms import NORM as Norm


class Block(nn.Module):
    def __init__(self, d, p):
        super().__init__()
        self.mix = nn.Linear(d, d)
        self.drop = nn.Dropout(p)
        self.norm = Norm(d)

    def forward(self, x):
        return self.norm(x + self.drop(self.mix(x)))  # norm
"""


def test_a_sibling_modules_import_fallback_class(tmp_path):
    # the LayerNorm class a sibling module defines where its fused import fails is what the
    # imported name computes; a fallback that is no class (None) types nothing
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/__init__.py").write_text("")
    (tmp_path / "pkg/norms.py").write_text(SIBLING_NORMS)
    for name, found in (("TfLayerNorm", True), ("OtherNorm", False)):
        text = SIBLING_BLOCK.replace("NORM", name)
        path = tmp_path / f"pkg/block_{name.lower()}.py"
        path.write_text(text)
        rules = _rules("ADP005")
        lines = {
            f.line
            for f in analyze(text, str(path), rules, package_of(str(path))).findings
        }
        assert lines == ({_line(text, "# norm")} if found else set()), name
