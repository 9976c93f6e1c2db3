"""Forms found while checking the blind batch research69 (research LLM/NLP code on PyPI:
memory-transformer-xl, kan-gpt, supar, speculative-decoding, h-transformer-1d,
gateloop-transformer, rela-transformer, FLASH-pytorch, soft-moe-pytorch, product-key-memory,
adjacent-attention-pytorch, bert-seq2seq).  The fixtures are ours.

- ADP012: a trainer class whose ``train`` method builds the optimizer, and whose ``evaluate``
  runs ``self.transform.train()`` (another object's namesake).  Mentions are words, so
  ``evaluate`` was taken to call ``train`` and ``train`` was read nowhere; a method that the
  class's other methods name only as another object's attribute is a root of its own.
  Near-miss: ``evaluate`` calling ``self.train()`` keeps ``train`` inlined there (the optimizer
  is still found once, where the flow reads it).
- ADP015: the head chosen by a conditional between two alike containers (``to_logits =
  self.to_logits if not early else self.to_early_logits``, each a Sequential ending in a Linear
  to the vocabulary): the containers' output notes are no doubt about their class.  Near-miss:
  the other arm ending in a Linear to the model width.
- ADP006: ``nn.ReLU() if activation == "relu" else nn.GELU()`` with a ``"relu"`` default that
  every build of the class in the file leaves: no bias-GELU site (lead ruling, vall-e-x).
  Near-misses: a build passing ``"gelu"``; a class the file never builds (both branches stay).
- ADP005: a written-out LayerNorm in the ``if self.conditional == False:`` branch of a norm class
  whose every build leaves the flag at its False default (bert_seq2seq's BertLayerNorm).
  Near-misses: a build turning the flag on, by keyword or by position.
- ADP010 verify: an attention class whose constructor stores a length it never reads
  (``self.mem_len = mem_len``) while ``forward`` computes a local of the same name from the
  memories: the local is another variable, so the argument is one kept for callers (a small
  count), not a read that needs a factory.  Near-miss: ``forward`` reading ``self.mem_len``.
- ADP010: supar's relative attention fills the scores in place and normalises in one statement
  that binds the name again (``attn = attn.masked_fill_(~mask, -inf).softmax(-2)``, heads
  last): no later read sees the filled tensor under its old name, so the value is the filled
  copy.  Found (the fix declines: a mask in the heads-last layout is a fixer limit).
  Near-miss: the filled scores read again under their name (returned beside the output).
- ADP010 verify: kan-gpt's attention stores a config field and only compares it with strings in
  a method choosing the projection class (``self.kan_implementation == "EFFICIENT_KAN"``): a
  mode, built with the first string it is compared with.
"""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

# --------------------------------------------------------------------------- ADP012

TRAINER = textwrap.dedent("""\
    import torch
    from torch.optim import Adam


    class Trainer:
        def __init__(self, model, transform):
            self.model = model
            self.transform = transform

        def train(self, lr, betas, eps, decay):
            self.optimizer = Adam(self.model.parameters(), lr, betas, eps, decay)
            self.transform.train()
            return self._steps()

        def evaluate(self, data):
            CALL
            return self._score(data)

        def _steps(self):
            return 0

        def _score(self, data):
            return data
    """)


def test_method_named_only_as_another_objects_namesake_is_read():
    code = TRAINER.replace("CALL", "self.transform.train()")
    assert finding_at(code, "ADP012", "self.optimizer = Adam(") is not None


def test_method_named_only_through_a_chain_of_attributes_is_read():
    code = TRAINER.replace("CALL", "self.model.encoder.train(False)")
    assert finding_at(code, "ADP012", "self.optimizer = Adam(") is not None


def test_method_the_class_calls_on_self_is_still_found_once():
    code = TRAINER.replace("CALL", "self.train(1e-3, (0.9, 0.99), 1e-8, 0.0)")
    assert len(found(code, "ADP012")) == 1

# --------------------------------------------------------------------------- ADP015

CHOSEN_HEAD = textwrap.dedent("""\
    import torch.nn.functional as F
    from einops import rearrange
    from torch import nn


    class Decoder(nn.Module):
        def __init__(self, dim, num_tokens, early_exit=False):
            super().__init__()
            self.token_emb = nn.Embedding(num_tokens, dim)
            self.to_logits = nn.Sequential(nn.RMSNorm(dim), nn.Linear(dim, num_tokens, bias=False))
            self.to_early_logits = None
            if early_exit:
                self.to_early_logits = nn.Sequential(nn.RMSNorm(dim), OTHER)

        def forward(self, x, return_loss=False, early_only=False):
            if return_loss:
                x, labels = x[:, :-1], x[:, 1:]
            x = self.token_emb(x)
            to_logits = self.to_logits if not early_only else self.to_early_logits
            logits = to_logits(x)
            if not return_loss:
                return logits
            return F.cross_entropy(rearrange(logits, "b n c -> b c n"), labels)
    """)


def test_head_chosen_between_two_alike_head_containers_is_found():
    # each arm is a Sequential ending in a Linear to the vocabulary: which one runs, the
    # logits are a head's (the container's output note is no doubt about its class)
    code = CHOSEN_HEAD.replace("OTHER", "nn.Linear(dim, num_tokens, bias=False)")
    assert finding_at(code, "ADP015", "logits = to_logits(x)") is not None


def test_head_chosen_against_a_container_of_another_kind_is_not_found():
    # the other arm ends in a Linear to the model width: not a head over the vocabulary
    code = CHOSEN_HEAD.replace("OTHER", "nn.Linear(dim, dim, bias=False)")
    assert finding_at(code, "ADP015", "logits = to_logits(x)") is None

# --------------------------------------------------------------------------- ADP006

CHOSEN_ACTIVATION = textwrap.dedent("""\
    from torch import nn


    class EncoderLayer(nn.Module):
        def __init__(self, dim, inner, activation="relu"):
            super().__init__()
            self.ffn = nn.Sequential(
                nn.Linear(dim, inner),
                nn.ReLU() if activation == "relu" else nn.GELU(),
                nn.Linear(inner, dim),
            )

        def forward(self, x):
            return x + self.ffn(x)


    class Encoder(nn.Module):
        def __init__(self, depth, dim, inner):
            super().__init__()
            self.layers = nn.ModuleList([BUILD for _ in range(depth)])

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x
    """)


def test_activation_every_build_leaves_at_its_relu_default_is_no_gelu():
    code = CHOSEN_ACTIVATION.replace("BUILD", "EncoderLayer(dim, inner)")
    assert finding_at(code, "ADP006", 'nn.ReLU() if activation == "relu" else nn.GELU()') is None


def test_activation_a_build_sets_to_gelu_is_found():
    code = CHOSEN_ACTIVATION.replace("BUILD", 'EncoderLayer(dim, inner, activation="gelu")')
    assert finding_at(code, "ADP006", 'nn.ReLU() if activation == "relu" else nn.GELU()') is not None


def test_activation_of_a_layer_the_file_never_builds_is_found():
    # its callers are elsewhere and may pass "gelu": both branches stay
    code = CHOSEN_ACTIVATION.replace("BUILD", "nn.Identity()")
    assert finding_at(code, "ADP006", 'nn.ReLU() if activation == "relu" else nn.GELU()') is not None

# --------------------------------------------------------------------------- ADP005

FLAGGED_NORM = textwrap.dedent("""\
    import torch
    from torch import nn


    class WrittenNorm(nn.Module):
        def __init__(self, hidden, eps=1e-12, conditional=False):
            super().__init__()
            self.gamma = nn.Parameter(torch.ones(hidden))
            self.beta = nn.Parameter(torch.zeros(hidden))
            self.eps = eps
            self.conditional = conditional
            if conditional:
                self.weight_dense = nn.Linear(2 * hidden, hidden, bias=False)

        def forward(self, x):
            if self.conditional == False:
                u = x.mean(-1, keepdim=True)
                s = (x - u).pow(2).mean(-1, keepdim=True)
                x = (x - u) / torch.sqrt(s + self.eps)
                return self.gamma * x + self.beta
            else:
                inputs, cond = x
                weight = self.gamma + self.weight_dense(cond)
                return weight * inputs + self.beta


    class SelfOutput(nn.Module):
        def __init__(self, hidden, p):
            super().__init__()
            self.dense = nn.Linear(hidden, hidden)
            self.norm = BUILD
            self.dropout = nn.Dropout(p)

        def forward(self, h, residual):
            h = self.dropout(self.dense(h))
            return self.norm(h + residual)
    """)


def test_written_layer_norm_under_a_flag_every_build_leaves_off_is_a_layer_norm():
    code = FLAGGED_NORM.replace("BUILD", "WrittenNorm(hidden, eps=1e-12)")
    assert finding_at(code, "ADP005", "return self.norm(h + residual)") is not None


def test_written_layer_norm_under_a_flag_a_build_turns_on_is_not():
    code = FLAGGED_NORM.replace("BUILD", "WrittenNorm(hidden, eps=1e-12, conditional=True)")
    assert finding_at(code, "ADP005", "return self.norm(h + residual)") is None


def test_written_layer_norm_under_a_flag_passed_by_position_is_not():
    code = FLAGGED_NORM.replace("BUILD", "WrittenNorm(hidden, 1e-12, p > 0)")
    assert finding_at(code, "ADP005", "return self.norm(h + residual)") is None

# --------------------------------------------------------------------------- ADP010 verify

MEMORY_ATTENTION = textwrap.dedent("""\
    import torch
    from torch import nn


    class MemoryAttention(nn.Module):
        def __init__(self, dim, mem_len, heads=2):
            super().__init__()
            self.heads = heads
            self.mem_len = mem_len
            self.scale = (dim // heads) ** -0.5
            self.to_q = nn.Linear(dim, dim, bias=False)
            self.to_kv = nn.Linear(dim, dim * 2, bias=False)

        def forward(self, x, mem=None):
            b, t, d = x.shape
            mem = x[:, :0] if mem is None else mem
            mem_len = MEM_LEN
            q = self.to_q(x).view(b, t, self.heads, -1).transpose(1, 2)
            k, v = self.to_kv(torch.cat((mem, x), dim=1)).chunk(2, dim=-1)
            k, v = (y.view(b, -1, self.heads, d // self.heads).transpose(1, 2) for y in (k, v))
            dots = torch.einsum("bhid,bhjd->bhij", q, k) * self.scale
            mask = torch.ones(t, t + mem_len, dtype=torch.bool, device=x.device).triu_(1 + mem_len)
            dots = dots.masked_fill(mask, -torch.finfo(dots.dtype).max)
            attn = dots.softmax(dim=-1)
            out = torch.einsum("bhij,bhjd->bhid", attn, v)
            return out.transpose(1, 2).reshape(b, t, d)
    """)


def _verify_one(tmp_path, text, cls):
    from adopter.config import Config
    from adopter.verify import verify_file
    from adopter.verify.core import options_for

    path = tmp_path / "model.py"
    path.write_text(text)
    results = verify_file(str(path), rules("ADP010"), Config(), benchmark=False,
                          options=options_for(Config(), benchmark=False))
    return {r.class_name: r for r in results if not r.combined}[cls]


def test_a_stored_length_shadowed_by_a_forward_local_verifies(tmp_path):
    from adopter.verify.result import PASS

    result = _verify_one(tmp_path, MEMORY_ATTENTION.replace("MEM_LEN", "mem.shape[1]"), "MemoryAttention")
    assert result.verdict == PASS, result


def _stored_only(text):
    import ast

    from adopter.verify import facts

    node = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef))
    return facts.stored_only(node, "mem_len")


def test_a_forward_local_of_the_stored_arguments_name_is_no_read_of_it():
    assert _stored_only(MEMORY_ATTENTION.replace("MEM_LEN", "mem.shape[1]"))


def test_a_forward_read_of_the_stored_attribute_is_a_read():
    assert not _stored_only(MEMORY_ATTENTION.replace("MEM_LEN", "min(mem.shape[1], self.mem_len)"))


def test_a_read_of_the_argument_in_the_constructor_is_a_read():
    code = MEMORY_ATTENTION.replace("MEM_LEN", "mem.shape[1]").replace(
        "self.to_q = nn.Linear(dim, dim, bias=False)", "self.to_q = nn.Linear(dim + mem_len - mem_len, dim, bias=False)")
    assert not _stored_only(code)

# --------------------------------------------------------------------------- ADP010

FILLED_IN_PLACE = textwrap.dedent("""\
    import torch
    from torch import nn


    class Attention(nn.Module):
        def __init__(self, dim, heads=2):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3)
            self.drop = nn.Dropout(0.1)

        def forward(self, x, mask):
            b, t, d = x.shape
            q, k, v = self.qkv(x).view(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            scores = torch.einsum("bhid,bhjd->bhij", q, k) * self.scale
            STEP
            out = torch.einsum("bhij,bhjd->bhid", self.drop(probs), v)
            RETURN
    """)


def test_scores_filled_in_place_in_a_statement_binding_the_name_again_are_found():
    code = FILLED_IN_PLACE.replace(
        "STEP", "scores = scores.masked_fill_(~mask[:, None, None, :], float('-inf')).softmax(-1)"
    ).replace("RETURN", "return out.transpose(1, 2).reshape(b, t, d)").replace("self.drop(probs)", "self.drop(scores)")
    assert finding_at(code, "ADP010", "scores = scores.masked_fill_(") is not None


def test_scores_filled_in_place_and_read_again_are_not():
    code = FILLED_IN_PLACE.replace(
        "STEP", "probs = scores.masked_fill_(~mask[:, None, None, :], float('-inf')).softmax(-1)"
    ).replace("RETURN", "return out.transpose(1, 2).reshape(b, t, d), scores")
    assert finding_at(code, "ADP010", "probs = scores.masked_fill_(") is None


def _fill_canons(step: str) -> list:
    """The canonical names of the fill ``step`` makes, in the flow of a forward holding it."""
    import ast

    from adopter.structure.model import module_structure

    src = FILLED_IN_PLACE.replace("STEP", step).replace("RETURN", "return out")
    structure = module_structure(ast.parse(src), None, src, "model.py")
    flows = [cls.flow(root) for cls in structure.classes.values() for root in cls.roots]
    return [n.canon for flow in flows for n in flow.nodes if n.op == "masked_fill_"]


def test_an_in_place_fill_read_again_in_its_statement_is_not_read_as_the_filled_copy():
    """``scores = scores.masked_fill_(m, v).softmax(-1) + scores``: the second read sees the
    filled tensor under its old name, so the fill is no copy (the read-once guard)."""
    once = "scores = scores.masked_fill_(~mask[:, None, None, :], float('-inf')).softmax(-1)"
    assert _fill_canons(once + "\n        probs = scores") == ["torch.Tensor.masked_fill"]
    assert _fill_canons(once + " + scores\n        probs = scores") == [""]

# --------------------------------------------------------------------------- ADP010 verify

CONFIG_MODE = textwrap.dedent("""\
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn


    class CausalSelfAttention(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.impl = config.proj_impl
            proj = self.get_proj()
            self.c_attn = proj(config.n_embd, 3 * config.n_embd)
            self.c_proj = nn.Linear(config.n_embd, config.n_embd)
            self.attn_dropout = nn.Dropout(config.attn_pdrop)
            self.register_buffer("bias", torch.tril(torch.ones(config.block_size, config.block_size))
                                 .view(1, 1, config.block_size, config.block_size))
            self.n_head = config.n_head
            self.n_embd = config.n_embd

        def get_proj(self):
            if self.impl == "LINEAR":
                return nn.Linear
            elif self.impl == "BILINEAR_FREE":
                return nn.Linear
            raise NotImplementedError()

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            att = self.attn_dropout(att)
            y = att @ v
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.c_proj(y)
    """)


def test_a_config_field_only_compared_with_strings_is_built_as_a_mode(tmp_path):
    from adopter.verify.result import PASS

    result = _verify_one(tmp_path, CONFIG_MODE, "CausalSelfAttention")
    assert result.verdict == PASS, result

