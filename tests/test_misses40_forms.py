"""Forms session 31's blind batches left unread, and its three false positives (session 32,
helper misses40).  The fixtures are ours; each is read by its computation.

- Attention scores read again after an unrelated ``if`` joins (native-sparse-attention's
  inference path: ``importance = sim[..., n:]`` feeding a block selection after the
  attention): on every path the scores are computed with after the softmax, so no rewrite can
  drop them (GUIDE: "probabilities that are always read again").  Near-misses: the scores read
  only in one arm of an ``if`` or returned after the join keep the site; a sum made from the
  scores before the softmax and read after it (lilt's two streams) keeps it too.
- q and k rotated per half each on its own line with one pair of tables (eole's 2-D per-chunk
  RoPE in a loop): one site.  Near-miss: each tensor with its own tables.
- A string default the file decides, through a sibling module's string factory
  (yet-another-retnet's "swish"): that branch only, no GELU.  Near-misses: a call passing
  "gelu", a "gelu" default, the class handed on as a value, GELU in the swish branch.
- Classes defined in another class's body (rtdl): read under their qualified names.
- One Linear to codebooks x vocabulary split by a starred reshape, one codebook per loss
  (higgs-audio v2).  Near-misses: another size told to the loss, another tensor's shape, a slice.
"""

from __future__ import annotations

import textwrap

from corpus_forms import found, line_of

SCORES_AGAIN = textwrap.dedent('''
    import torch
    from torch import nn


    class Attn(nn.Module):
        def __init__(self, dim, keep):
            super().__init__()
            self.keep = keep
            self.scale = dim ** -0.5

        def forward(self, q, k, v, extra):
            sim = torch.einsum('bhid,bhjd->bhij', q, k) * self.scale
            attn = sim.softmax(dim=-1)
            out = torch.einsum('bhij,bhjd->bhid', attn, v)
            if extra.shape[-1] > 4:
                extra = extra[..., :4]
            importance = sim[..., 1:]
            n = importance.shape[-1]
            if n > self.keep:
                importance = importance.mean(dim=1)
            return out + extra.sum(), importance.topk(2, dim=-1).indices
''')


def _attention_lines(code: str) -> set:
    return {f.line for f in found(code, "ADP010")}


def test_scores_read_again_after_an_unrelated_branch_are_no_site():
    assert _attention_lines(SCORES_AGAIN) == set()


def test_scores_computed_with_in_both_arms_are_no_site():
    code = SCORES_AGAIN.replace(
        "        importance = sim[..., 1:]\n        n = importance.shape[-1]\n"
        "        if n > self.keep:\n            importance = importance.mean(dim=1)\n",
        "        if self.keep:\n            importance = sim.mean(dim=1)\n"
        "        else:\n            importance = sim.amax(dim=1)\n")
    assert "sim.amax" in code
    assert _attention_lines(code) == set()


def test_scores_read_in_one_arm_only_keep_the_site():
    code = SCORES_AGAIN.replace(
        "        importance = sim[..., 1:]\n        n = importance.shape[-1]\n"
        "        if n > self.keep:\n            importance = importance.mean(dim=1)\n",
        "        importance = extra\n        if self.keep:\n"
        "            importance = sim.mean(dim=1) * 2\n")
    assert "sim.mean(dim=1) * 2" in code
    assert _attention_lines(code) == {line_of(code, "sim = torch.einsum")}


def test_scores_returned_after_the_join_keep_the_site():
    code = SCORES_AGAIN.replace(
        "        importance = sim[..., 1:]\n        n = importance.shape[-1]\n"
        "        if n > self.keep:\n            importance = importance.mean(dim=1)\n"
        "        return out + extra.sum(), importance.topk(2, dim=-1).indices\n",
        "        return out + extra.sum(), sim\n")
    assert code.rstrip().endswith("extra.sum(), sim")
    assert _attention_lines(code) == {line_of(code, "sim = torch.einsum")}



TWO_STREAMS = textwrap.dedent('''
    import math

    import torch
    from torch import nn


    class TwoStreams(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.scale = math.sqrt(dim)
            self.dropout = nn.Dropout(0.1)

        def forward(self, q, k, v, lq, lk, lv, mask=None):
            text = torch.matmul(q, k.transpose(-1, -2))
            layout = torch.matmul(lq, lk.transpose(-1, -2))
            text = text / self.scale
            layout = layout / self.scale
            text_scores = text + layout
            layout_scores = layout + text
            if mask is not None:
                layout_scores = layout_scores + mask
            layout_probs = nn.Softmax(dim=-1)(layout_scores)
            layout_probs = self.dropout(layout_probs)
            layout_out = torch.matmul(layout_probs, lv)
            if mask is not None:
                text_scores = text_scores + mask
            text_probs = nn.Softmax(dim=-1)(text_scores)
            text_probs = self.dropout(text_probs)
            text_out = torch.matmul(text_probs, v)
            return text_out, layout_out
''')


def test_a_sum_made_before_the_softmax_and_read_after_it_keeps_the_site():
    # lilt's two streams: each takes the other's raw scores as a bias before either softmax;
    # the text attention after the layout one reads the text sum, not the layout scores
    ends = sorted(f.end_line for f in found(TWO_STREAMS, "ADP010"))
    assert ends == [line_of(TWO_STREAMS, "layout_out = torch.matmul"), line_of(TWO_STREAMS, "text_out = torch.matmul")]

# -- q and k rotated per half, each on its own line, with one pair of tables (eole's 2-D
# per-chunk RoPE in a loop): one RoPE of both, one site at q's rotation.  Near-miss: each tensor
# with its own tables stays two.

PER_CHUNK = textwrap.dedent('''
    import torch


    def rotate_chunks(query, key, cos_sin, ndim: int = 2):
        head_dim = query.shape[-1]
        chunk = head_dim // ndim
        half = chunk // 2
        width = head_dim // 2
        per_dim = width // ndim
        cos_full = cos_sin[None, :, None, :width]
        sin_full = cos_sin[None, :, None, width:]
        q_parts = []
        k_parts = []
        for i in range(ndim):
            qi = query[..., i * chunk:(i + 1) * chunk]
            ki = key[..., i * chunk:(i + 1) * chunk]
            ci = cos_full[..., i * per_dim:(i + 1) * per_dim]
            si = sin_full[..., i * per_dim:(i + 1) * per_dim]
            q1, q2 = qi[..., :half], qi[..., half:]
            k1, k2 = ki[..., :half], ki[..., half:]
            q_parts.append(torch.cat([q1 * ci - q2 * si, q2 * ci + q1 * si], dim=-1))
            k_parts.append(torch.cat([k1 * ci - k2 * si, k2 * ci + k1 * si], dim=-1))
        return torch.cat(q_parts, dim=-1), torch.cat(k_parts, dim=-1)
''')


def test_q_and_k_rotated_per_chunk_with_one_pair_of_tables_are_one_site():
    assert [f.line for f in found(PER_CHUNK, "ADP014")] == [line_of(PER_CHUNK, "q_parts.append(torch.cat")]


def test_q_and_k_rotated_per_chunk_with_their_own_tables_stay_two():
    code = PER_CHUNK.replace("(query, key, cos_sin, ndim: int = 2)", "(query, key, cos_sin, k_cos_sin, ndim: int = 2)") \
        .replace("    q_parts = []\n", "    k_cos = k_cos_sin[None, :, None, :width]\n"
                 "    k_sin = k_cos_sin[None, :, None, width:]\n    q_parts = []\n") \
        .replace("k1 * ci - k2 * si, k2 * ci + k1 * si", "k1 * k_cos - k2 * k_sin, k2 * k_cos + k1 * k_sin")
    assert "k1 * k_cos" in code and "k_sin = k_cos_sin" in code
    assert sorted(f.line for f in found(code, "ADP014")) == [
        line_of(code, "q_parts.append(torch.cat"), line_of(code, "k_parts.append(torch.cat")]


# -- An activation from a sibling module's string factory, keyed by a constructor parameter
# whose string default the file decides (yet-another-retnet: ``activation="swish"``, handed on by
# the file's outer model whose own default is "swish", no call passing another; the layer class
# named in annotations and isinstance asserts): the factory's ``if activation == "swish":``
# runs its one branch, F.silu: no bias-GELU.  Near-misses: a call passing "gelu", a "gelu"
# default, the class handed on as a value (built with any key), the class never built in the file
# (its key comes from callers elsewhere: altasr's and diffusers' "silu" defaults stay run-time
# keys, as labelled), F.gelu written in the factory's swish branch.  A same-file factory keeps
# the GUIDE's "same-file table or factory keyed by a run-time string" (detr's "relu" default).

ACTS = textwrap.dedent('''
    import torch.nn.functional as F


    def get_activation_fn(activation: str):
        if activation == "swish":
            return F.silu
        elif activation == "gelu":
            return F.gelu
        elif activation == "relu":
            return F.relu
        else:
            raise RuntimeError(activation)
''')

STRING_DEFAULT = textwrap.dedent('''
    from typing import Callable, Union

    from torch import nn

    from actpkg.acts import get_activation_fn


    class Layer(nn.Module):
        def __init__(self, d_model: int, dim_feedforward: int = 2048,
                     activation: Union[str, Callable] = "swish"):
            super().__init__()
            if isinstance(activation, str):
                activation = get_activation_fn(activation)
            self.activation = activation
            self.linear1 = nn.Linear(d_model, dim_feedforward)
            self.linear2 = nn.Linear(dim_feedforward, d_model)

        def forward(self, x):
            x = self.activation(self.linear1(x))
            return self.linear2(x)


    class Stack(nn.Module):
        def __init__(self, layer: Layer, num_layers: int):
            super().__init__()
            assert isinstance(layer, Layer)
            self.layers = nn.ModuleList([layer for _ in range(num_layers)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x


    class Net(nn.Module):
        def __init__(self, d_model: int = 512, activation: Union[str, Callable] = "swish"):
            super().__init__()
            self.stack = Stack(Layer(d_model, activation=activation), 2)

        def forward(self, x):
            return self.stack(x)


    def small() -> Net:
        return Net(d_model=256)
''')


def _activation_sites(root, text: str, acts: str = ACTS) -> list:
    from corpus_forms import rules

    from adopter.engine import analyze
    from adopter.structure import package_of

    folder = root / "actpkg"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "acts.py").write_text(acts)
    path = folder / "model.py"
    path.write_text(text)
    return [f.line for f in analyze(text, str(path), rules("ADP006"), package_of(str(path))).findings
            if f.rule == "ADP006"]


def test_a_swish_default_the_file_decides_through_a_sibling_factory_is_no_gelu(tmp_path):
    assert _activation_sites(tmp_path, STRING_DEFAULT) == []


def test_a_string_default_the_file_may_change_stays_a_possible_gelu(tmp_path):
    line = line_of(STRING_DEFAULT, "x = self.activation(self.linear1(x))")
    passed = STRING_DEFAULT.replace("return Net(d_model=256)", 'return Net(d_model=256, activation="gelu")')
    assert _activation_sites(tmp_path / "a", passed) == [line]
    gelu_default = STRING_DEFAULT.replace('activation: Union[str, Callable] = "swish"):\n        super().__init__()\n'
                                          '        self.stack', 'activation: Union[str, Callable] = "gelu"):\n'
                                          '        super().__init__()\n        self.stack')
    assert '= "gelu"):' in gelu_default
    assert _activation_sites(tmp_path / "b", gelu_default) == [line]
    handed = STRING_DEFAULT.replace("return Net(d_model=256)", "return Net(d_model=256), Layer")
    assert _activation_sites(tmp_path / "c", handed) == [line]
    same_file = STRING_DEFAULT.replace("from actpkg.acts import get_activation_fn\n", ACTS.replace(
        "import torch.nn.functional as F\n", "")).replace("from torch import nn\n", "import torch.nn.functional as F\nfrom torch import nn\n")
    assert "def get_activation_fn" in same_file and "actpkg" not in same_file
    assert _activation_sites(tmp_path / "f", same_file) == [line_of(same_file, "x = self.activation(self.linear1(x))")]
    never_built = STRING_DEFAULT[:STRING_DEFAULT.index("class Stack")]
    assert "class Layer" in never_built and "Layer(" not in never_built.replace("class Layer(", "")
    assert _activation_sites(tmp_path / "e", never_built) == [line]  # built only by other files' callers
    gelu_swish = ACTS.replace('        return F.silu', '        return F.gelu')
    assert "F.silu" not in gelu_swish
    assert _activation_sites(tmp_path / "d", STRING_DEFAULT, gelu_swish) == [line]


# -- Classes defined inside another class's body (rtdl's ``MLP.Block``, ``ResNet.Block``,
# ``Transformer.FFN``: two nested classes share the bare name ``Block``): each read as a class of
# the file under its qualified name, built as ``Outer.Block(...)`` or ``self.Block(...)``.
# Near-misses: a nested block whose activation is a ReLU, a BatchNorm before the conv.

NESTED = textwrap.dedent('''
    import torch.nn as nn


    def make_module(spec, *args):
        if isinstance(spec, str):
            cls = getattr(nn, spec)
            return cls(*args)
        return spec(*args)


    class MLP(nn.Module):
        class Block(nn.Module):
            def __init__(self, *, d_in, d_out, activation, dropout):
                super().__init__()
                self.linear = nn.Linear(d_in, d_out)
                self.activation = make_module(activation)
                self.dropout = nn.Dropout(dropout)

            def forward(self, x):
                return self.dropout(self.activation(self.linear(x)))

        def __init__(self, d_in, d, n, activation, dropout):
            super().__init__()
            self.blocks = nn.Sequential(*[
                MLP.Block(d_in=d if i else d_in, d_out=d, activation=activation, dropout=dropout)
                for i in range(n)
            ])
            self.head = nn.Linear(d, 1)

        def forward(self, x):
            return self.head(self.blocks(x))


    class ConvNet(nn.Module):
        class Block(nn.Module):
            def __init__(self, d):
                super().__init__()
                self.conv = nn.Conv2d(d, d, 3, padding=1, bias=False)
                self.norm = nn.BatchNorm2d(d)

            def forward(self, x):
                return x + self.norm(self.conv(x))

        def __init__(self, d, n):
            super().__init__()
            self.blocks = nn.ModuleList([self.Block(d) for _ in range(n)])

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x
''')


def test_classes_defined_in_another_class_body_are_read():
    assert [f.line for f in found(NESTED, "ADP006")] == [
        line_of(NESTED, "return self.dropout(self.activation(self.linear(x)))")]
    assert [f.line for f in found(NESTED, "ADP007")] == [line_of(NESTED, "return x + self.norm(self.conv(x))")]
    finding = found(NESTED, "ADP007")[0]
    assert finding.class_name == "ConvNet.Block"


def test_nested_class_near_misses():
    relu = NESTED.replace("self.activation = make_module(activation)", "self.activation = nn.ReLU()")
    assert "nn.ReLU()" in relu
    assert found(relu, "ADP006") == []
    norm_first = NESTED.replace("return x + self.norm(self.conv(x))", "return x + self.conv(self.norm(x))")
    assert "self.conv(self.norm(x))" in norm_first
    assert found(norm_first, "ADP007") == []


def test_a_nested_class_fix_rewrites_its_forward():
    from corpus_forms import rules

    from adopter.synth import fix_text

    fixed = fix_text(NESTED, "model.py", rules("ADP007")).text
    assert "return x + conv_bn(x, self.conv, self.norm)" in fixed


# -- One Linear to codebooks x codebook vocabulary, its last axis split by a starred reshape
# (``logits.reshape(*logits.shape[:2], n, V)``), one codebook picked per loop step
# (``[:, :, i, :]``) into the loss API told V (higgs-audio v2).  Near-misses: the loss told
# another size than the split's, the split of another tensor's shape, a slice (not a pick) of
# the codebook axis.  (``self.loss_function`` is the base class's loss API, as in transformers.)

CODEBOOKS = textwrap.dedent('''
    from torch import nn


    class AudioLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.model = nn.Identity()
            self.audio_lm_head = nn.Linear(config.hidden_size, config.num_codebooks * config.codebook_size, bias=False)

        def forward(self, hidden_states, audio_labels=None, **kwargs):
            hidden_states = self.model(hidden_states)
            logits = self.audio_lm_head(hidden_states)
            loss = None
            if audio_labels is not None:
                audio_logits = logits.reshape(*logits.shape[:2], self.config.num_codebooks, self.config.codebook_size)
                losses = []
                for idx in range(self.config.num_codebooks):
                    codebook_logits = audio_logits[:, :, idx, :]
                    codebook_labels = audio_labels[:, :, idx]
                    losses.append(self.loss_function(codebook_logits, codebook_labels, self.config.codebook_size, **kwargs))
                loss = sum(losses)
            return loss, logits
''')


def _loss_sites(code: str) -> list:
    return [f.line for f in found(code, "ADP015")]


def test_one_codebook_of_a_split_head_into_the_loss_api_is_a_site():
    assert _loss_sites(CODEBOOKS) == [line_of(CODEBOOKS, "logits = self.audio_lm_head(hidden_states)")]
    view = CODEBOOKS.replace("logits.reshape(*logits.shape[:2],", "logits.view(*logits.size()[:2],")
    assert "logits.view(*logits.size()[:2]," in view
    assert _loss_sites(view) == [line_of(view, "logits = self.audio_lm_head(hidden_states)")]


def test_split_head_near_misses():
    other_size = CODEBOOKS.replace("codebook_labels, self.config.codebook_size, **kwargs)",
                                   "codebook_labels, self.config.vocab_size, **kwargs)")
    assert "self.config.vocab_size, **kwargs)" in other_size
    assert _loss_sites(other_size) == []
    other_shape = CODEBOOKS.replace("logits.reshape(*logits.shape[:2],", "logits.reshape(*audio_labels.shape[:2],")
    assert "*audio_labels.shape[:2]" in other_shape
    assert _loss_sites(other_shape) == []
    sliced = CODEBOOKS.replace("audio_logits[:, :, idx, :]", "audio_logits[:, :, idx:, :]")
    assert "idx:, :]" in sliced
    assert _loss_sites(sliced) == []


NESTED_NORM = textwrap.dedent('''
    from torch import nn


    class Stem(nn.Module):
        class Norm(nn.BatchNorm2d):
            pass

        norm_cls = Norm

        def __init__(self, c, d):
            super().__init__()
            self.a = nn.Sequential(nn.Conv2d(c, d, 3, bias=False), self.Norm(d))
            self.b = nn.Sequential(nn.Conv2d(d, d, 3, bias=False), self.norm_cls(d))
            self.c = nn.Sequential(nn.Conv2d(d, d, 3, bias=False), Stem.Norm(d))

        def forward(self, x):
            return self.c(self.b(self.a(x)))
''')


def test_a_nested_class_built_as_self_attribute_alias_or_qualified_name_is_typed():
    assert sorted(f.line for f in found(NESTED_NORM, "ADP007")) == [
        line_of(NESTED_NORM, "self.a = "), line_of(NESTED_NORM, "self.b = "), line_of(NESTED_NORM, "self.c = ")]
    group = NESTED_NORM.replace("class Norm(nn.BatchNorm2d):", "class Norm(nn.GroupNorm):")
    assert "nn.GroupNorm" in group
    assert found(group, "ADP007") == []
