"""Forms found missing (or wrongly reported) by the blind batch corpus12a (transformers 4.45.2
model files new since 4.34: decoder LLMs with MoE and state-space layers, speech, audio,
multimodal, detection and time-series code): each test states the semantic fact the engine now
reads, and near-misses it must still leave alone.  The fixtures are ours, written in those
files' styles."""

from __future__ import annotations

import textwrap

from corpus_forms import covered as _covered
from corpus_forms import findings as _findings

# -- ADP014: a helper that rotates q, k and v: the v rotation is not a site of its own -----------

ROTATE_QKV = textwrap.dedent('''
    import torch
    from torch import nn


    def rotate_half(x):
        x1 = x[..., : x.shape[-1] // 2]
        x2 = x[..., x.shape[-1] // 2 :]
        return torch.cat((-x2, x1), dim=-1)


    def rotate_all(q, k, v, cos, sin):
        q_out = (q * cos) + (rotate_half(q) * sin)
        k_out = (k * cos) + (rotate_half(k) * sin)
        v_out = (v * cos) + (rotate_half(v) * sin)
        return q_out, k_out, v_out


    class Attention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)
            self.to_v = nn.Linear(dim, dim)

        def forward(self, x, cos, sin):
            b, n, d = x.shape
            q = self.to_q(x).view(b, n, self.heads, -1).transpose(1, 2)
            k = self.to_k(x).view(b, n, self.heads, -1).transpose(1, 2)
            v = self.to_v(x).view(b, n, self.heads, -1).transpose(1, 2)
            q, k, v = rotate_all(q, k, v, cos, sin)
            w = torch.matmul(q, k.transpose(-1, -2)).softmax(dim=-1)
            return torch.matmul(w, v)
''')


def test_a_third_tensor_rotated_beside_q_and_k_is_not_another_site():
    found = _findings(ROTATE_QKV, "ADP014")
    assert [(f.line, f.end_line) for f in found] == [(13, 14)]  # q and k: one site
    assert not _covered(ROTATE_QKV, "v_out = (v * cos)", "ADP014")


ONE_TENSOR_HELPER = textwrap.dedent('''
    import torch
    from torch import nn


    def rotate_half(x):
        x1 = x[..., : x.shape[-1] // 2]
        x2 = x[..., x.shape[-1] // 2 :]
        return torch.cat((-x2, x1), dim=-1)


    def apply_rope(t, cos, sin):
        return (t * cos) + (rotate_half(t) * sin)


    def rotate_pair(q, k, cos, sin):
        return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


    class Attention(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.to_q = nn.Linear(dim, dim)
            self.to_k = nn.Linear(dim, dim)

        def forward(self, x, cos, sin, cos2, sin2):
            q = apply_rope(self.to_q(x), cos, sin)
            k = apply_rope(self.to_k(x), cos, sin)
            q2, k2 = rotate_pair(q, k, cos2, sin2)
            return torch.matmul(q2, k2.transpose(-1, -2))
''')


def test_a_one_tensor_helper_beside_a_q_k_helper_is_still_reported():
    # Near miss: the one-tensor helper is a function of its own (applied to q and to k), not a
    # third tensor in the function that rotates q and k; both sites stay.
    assert _covered(ONE_TENSOR_HELPER, "return (t * cos) + (rotate_half(t) * sin)", "ADP014")
    assert _covered(ONE_TENSOR_HELPER, "return (q * cos) + (rotate_half(q) * sin)", "ADP014")


# -- ADP015: the logits flattened by the sizes their own shape unpacked into -----------------------

SHAPE_UNPACKED = textwrap.dedent('''
    import torch
    from torch import nn
    from torch.nn import CrossEntropyLoss


    class TextLM(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.embed_tokens = nn.Embedding(config.vocab_size, config.dim)
            self.block = nn.Linear(config.dim, config.dim)
            self.lm_head = nn.Linear(in_features=config.dim, out_features=config.vocab_size, bias=False)

        def forward(self, input_ids, labels=None):
            h = self.block(self.embed_tokens(input_ids))
            lm_logits = self.lm_head(h)
            loss = None
            if labels is not None:
                shifted = lm_logits[..., :-1, :].contiguous()
                shift_labels = labels[..., 1:].contiguous()
                batch, length, classes = shifted.shape
                loss_fct = CrossEntropyLoss()
                loss = loss_fct(shifted.view(FLAT), shift_labels.view(batch * length))
            return loss, lm_logits
''')


def _shape_unpacked(flat: str) -> str:
    return SHAPE_UNPACKED.replace("FLAT", flat)


def test_a_view_by_the_logits_own_unpacked_sizes_flattens_the_leading_axes():
    code = _shape_unpacked("batch * length, classes")
    assert _covered(code, "lm_logits = self.lm_head(h)", "ADP015")
    # either operand order of the product
    assert _covered(_shape_unpacked("length * batch, classes"), "lm_logits = self.lm_head(h)", "ADP015")


def test_views_that_do_not_keep_the_vocabulary_axis_whole_are_not_reported():
    # Near misses: the vocabulary axis merged with the positions, a product missing an axis,
    # sizes of another tensor, the vocabulary size not last.
    for flat in ("batch, length * classes", "batch, classes", "length, classes",
                 "batch * length, shift_labels.size(-1)", "batch * classes, length"):
        assert not _covered(_shape_unpacked(flat), "lm_logits = self.lm_head(h)", "ADP015"), flat


def test_sizes_unpacked_from_another_tensor_are_not_the_logits_axes():
    code = _shape_unpacked("b * t, v").replace(
        "batch, length, classes = shifted.shape", "b, t, v = h.shape")
    assert not _covered(code, "lm_logits = self.lm_head(h)", "ADP015")


def test_a_token_classifier_flattened_the_same_way_is_not_a_vocabulary_loss():
    # Near miss: the same flattening of a Linear to num_labels in a file whose embedding has
    # vocab_size entries: the head is not typed as a vocabulary head, the loss is over labels.
    code = _shape_unpacked("batch * length, classes").replace(
        "out_features=config.vocab_size", "out_features=config.num_labels")
    assert not _covered(code, "lm_logits = self.lm_head(h)", "ADP015")


# -- ADP009: key and value of another input on the cross-attention branch, the query after the if ---

QFORMER_LIKE = textwrap.dedent('''
    import math
    import torch
    from torch import nn


    class QueryAttention(nn.Module):
        def __init__(self, dim, heads, kv_dim=None):
            super().__init__()
            self.heads = heads
            self.query = nn.Linear(dim, dim)
            self.key = nn.Linear(kv_dim or dim, dim)
            self.value = nn.Linear(kv_dim or dim, dim)

        def split(self, x):
            b, n, _ = x.shape
            return x.view(b, n, self.heads, -1).transpose(1, 2)

        def forward(self, hidden_states, context=None, cache=None):
            if context is not None:
                k = self.split(self.key(context))
                v = self.split(self.value(context))
            elif cache is not None:
                k = torch.cat([cache[0], self.split(self.key(hidden_states))], dim=2)
                v = torch.cat([cache[1], self.split(self.value(hidden_states))], dim=2)
            else:
                k = self.split(self.key(hidden_states))
                v = self.split(self.value(hidden_states))
            q = self.split(self.query(hidden_states))
            w = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            return torch.matmul(w.softmax(dim=-1), v)
''')


def test_projections_shared_with_a_cross_attention_branch_are_not_one_input():
    assert not _findings(QFORMER_LIKE, "ADP009")


def test_the_same_shape_with_every_branch_projecting_one_input_is_still_reported():
    # Near miss: the branches differ only by the cache; every way into the query projects key
    # and value of hidden_states, so the three layers project one input.
    code = QFORMER_LIKE.replace("self.key(context)", "self.key(hidden_states)").replace(
        "self.value(context)", "self.value(hidden_states)")
    assert _findings(code, "ADP009")


def test_a_self_attention_with_the_query_last_is_still_reported():
    code = textwrap.dedent('''
        from torch import nn


        class Attention(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.q = nn.Linear(dim, dim)
                self.k = nn.Linear(dim, dim)
                self.v = nn.Linear(dim, dim)

            def forward(self, x):
                k = self.k(x)
                v = self.v(x)
                q = self.q(x)
                return (q @ k.transpose(-1, -2)).softmax(-1) @ v
    ''')
    assert _covered(code, "k = self.k(x)", "ADP009")


def test_the_cross_branch_written_second_is_an_alternative_too():
    head, rest = QFORMER_LIKE.split("        if context is not None:")
    tail = rest[rest.index("        q = self.split"):]
    code = head + textwrap.indent(textwrap.dedent("""
        if context is None:
            k = self.split(self.key(hidden_states))
            v = self.split(self.value(hidden_states))
        else:
            k = self.split(self.key(context))
            v = self.split(self.value(context))
    """).strip("\n"), "        ") + "\n" + tail
    assert code.index("self.key(context)") > code.index("self.key(hidden_states)")
    compile(code, "model.py", "exec")
    assert not _findings(code, "ADP009")


def test_the_same_layers_run_on_two_inputs_one_after_the_other_are_two_sites():
    # Near miss: local q, k, v of the tokens, then global q, k, v of the global tokens with the
    # same three layers (Pegasus-X's block attention): two one-input sites, the first call of
    # each layer an earlier use on every way, not an alternative input.
    code = textwrap.dedent('''
        import torch.nn.functional as F
        from torch import nn


        class BlockAttention(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.q_proj = nn.Linear(dim, dim)
                self.k_proj = nn.Linear(dim, dim)
                self.v_proj = nn.Linear(dim, dim)

            def forward(self, tokens, globals_):
                local_q = self.q_proj(tokens)
                local_k = self.k_proj(tokens)
                local_v = self.v_proj(tokens)
                global_q = self.q_proj(globals_)
                global_k = self.k_proj(globals_)
                global_v = self.v_proj(globals_)
                # (each triple an attention's operands: ADP009's outputs_meet, session 25)
                return (F.scaled_dot_product_attention(local_q, local_k, local_v),
                        F.scaled_dot_product_attention(global_q, global_k, global_v))
    ''')
    assert _covered(code, "local_q = self.q_proj(tokens)", "ADP009")
    assert _covered(code, "global_q = self.q_proj(globals_)", "ADP009")
