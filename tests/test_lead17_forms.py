"""Forms from the lead's blind recommender batch of session 17 (recbole, torch-rechub,
deepctr-torch): our own fixtures, each with near-misses that must not match."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found, rules

# ------------------------------------------------- ADP010: scores against a weight are pooling

POOLING = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class InterestAggregation(nn.Module):
        def __init__(self, dim, k):
            super().__init__()
            self.theta = nn.Parameter(torch.randn(dim, k))

        def forward(self, x):
            d = torch.matmul(x, self.theta)
            d = nn.Softmax(dim=-2)(d)
            return torch.einsum("nij,nik->nkj", x, d)


    class SelfAttentive(nn.Module):
        def __init__(self, dim, hidden, k):
            super().__init__()
            self.w1 = nn.Parameter(torch.rand(dim, hidden))
            self.w2 = nn.Parameter(torch.rand(hidden, k))

        def forward(self, x):
            h = torch.einsum("bse,ed->bsd", x, self.w1).tanh()
            a = F.softmax(torch.einsum("bsd,dk->bsk", h, self.w2), dim=1)
            a = a.permute(0, 2, 1)
            return torch.matmul(a, x)


    class TransposedQueries(nn.Module):
        def __init__(self, dim, k):
            super().__init__()
            self.queries = nn.Parameter(torch.randn(k, dim))

        def forward(self, x):
            keys = self.queries.t()
            scores = torch.matmul(x, keys)
            return torch.matmul(scores.softmax(dim=1).transpose(1, 2), x)
    """)

ATTENTION = textwrap.dedent("""\
    import torch
    from torch import nn


    class LatentQueries(nn.Module):
        def __init__(self, dim, n):
            super().__init__()
            self.latents = nn.Parameter(torch.randn(n, dim))
            self.to_q = nn.Linear(dim, dim)
            self.to_kv = nn.Linear(dim, 2 * dim)

        def forward(self, x):
            q = self.to_q(self.latents).expand(x.shape[0], -1, -1)
            k, v = self.to_kv(x).chunk(2, dim=-1)
            scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5
            return scores.softmax(dim=-1) @ v  # latent-site


    class BufferKeys(nn.Module):
        def __init__(self, dim, n):
            super().__init__()
            self.register_buffer("memory", torch.randn(1, n, dim))
            self.to_q = nn.Linear(dim, dim)

        def forward(self, x):
            q = self.to_q(x)
            scores = q @ self.memory.transpose(-2, -1)
            return scores.softmax(dim=-1) @ self.memory  # buffer-site
    """)


def test_softmax_pooling_against_a_weight_of_the_module_is_not_attention():
    # one tensor projected by a learned matrix, pooled: no second set of keys to compare
    assert found(POOLING, "ADP010") == []


def test_learned_queries_a_layer_projects_and_buffers_used_as_keys_stay_attention():
    assert finding_at(ATTENTION, "ADP010", "# latent-site") is not None
    # a buffer is no weight (a memory of keys, a cache): only nn.Parameter attributes are
    assert finding_at(ATTENTION, "ADP010", "# buffer-site") is not None


# ------------------------------------------- ADP015: an item-embedding head read through a name

RECOMMENDER = textwrap.dedent("""\
    import torch
    from torch import nn

    from .losses import BPRLoss


    class NextItem(nn.Module):
        def __init__(self, n_items, dim, loss_type="CE"):
            super().__init__()
            self.loss_type = loss_type
            self.item_embedding = nn.Embedding(n_items, dim, padding_idx=0)
            self.encoder = nn.GRU(dim, dim, batch_first=True)
            if loss_type == "BPR":
                self.loss_fct = BPRLoss()
            elif loss_type == "CE":
                self.loss_fct = nn.CrossEntropyLoss()
            else:
                raise NotImplementedError(loss_type)

        def forward(self, item_seq):
            out, _ = self.encoder(self.item_embedding(item_seq))
            return out[:, -1]

        def calculate_loss(self, item_seq, pos_items, neg_items):
            seq_output = self.forward(item_seq)
            if self.loss_type == "BPR":
                pos = (seq_output * self.item_embedding(pos_items)).sum(-1)
                neg = (seq_output * self.item_embedding(neg_items)).sum(-1)
                return self.loss_fct(pos, neg)
            test_item_emb = self.item_embedding.weight
            logits = torch.matmul(seq_output, test_item_emb.transpose(0, 1))  # item-head
            return self.loss_fct(logits, pos_items)
    """)

NOT_AN_ITEM_HEAD = textwrap.dedent("""\
    import torch
    from torch import nn


    class OtherWeight(nn.Module):
        def __init__(self, n_items, dim, n_classes):
            super().__init__()
            self.item_embedding = nn.Embedding(n_items, dim)
            self.proj = nn.Linear(dim, n_classes)
            self.loss_fct = nn.CrossEntropyLoss()

        def forward(self, item_seq, labels):
            h = self.item_embedding(item_seq).mean(1)
            w = self.item_embedding.weight
            w = self.proj.weight
            logits = torch.matmul(h, w.transpose(0, 1))  # rebound
            return self.loss_fct(logits, labels)


    class NeverCrossEntropy(nn.Module):
        def __init__(self, n_items, dim, squared=True):
            super().__init__()
            self.item_embedding = nn.Embedding(n_items, dim)
            self.loss_fct = nn.MSELoss() if squared else nn.L1Loss()

        def forward(self, item_seq, target):
            h = self.item_embedding(item_seq).mean(1)
            w = self.item_embedding.weight
            return self.loss_fct(torch.matmul(h, w.t()), target)  # regression
    """)


def test_a_tied_item_head_read_through_a_name_into_a_configured_cross_entropy_is_found():
    # the logits over every item the model embeds its inputs with, into the cross-entropy the
    # "CE" setting builds (report-only: the configuration that fuses is reported)
    assert finding_at(RECOMMENDER, "ADP015", "# item-head") is not None


def test_a_rebound_name_or_a_loss_that_is_never_cross_entropy_is_not_a_head():
    assert found(NOT_AN_ITEM_HEAD, "ADP015") == []


# ------------------------------------- ADP006: a table of the class's own methods; list() layers

METHOD_TABLE = textwrap.dedent("""\
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn


    class FeedForward(nn.Module):
        def __init__(self, d, h, act="gelu"):
            super().__init__()
            self.dense_1 = nn.Linear(d, h)
            self.act_fn = self.get_act(act)
            self.dense_2 = nn.Linear(h, d)

        def get_act(self, act):
            table = {"gelu": self.gelu, "relu": F.relu, "swish": self.swish}
            return table[act]

        def gelu(self, x):
            return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))

        def swish(self, x):
            return x * torch.sigmoid(x)

        def forward(self, x):
            h = self.act_fn(self.dense_1(x))  # table-site
            return self.dense_2(h)
    """)

NO_GELU_IN_TABLE = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class SwishOnly(nn.Module):
        def __init__(self, d, h, act="swish"):
            super().__init__()
            self.dense_1 = nn.Linear(d, h)
            self.act_fn = self.get_act(act)

        def get_act(self, act):
            table = {"swish": self.swish, "relu": F.relu}
            return table[act]

        def swish(self, x):
            return x * torch.sigmoid(x)

        def forward(self, x):
            return self.act_fn(self.dense_1(x))


    class QuickGelu(nn.Module):
        def __init__(self, d, h, act="gelu"):
            super().__init__()
            self.dense_1 = nn.Linear(d, h)
            self.act_fn = self.get_act(act)

        def get_act(self, act):
            table = {"gelu": self.gelu, "relu": F.relu}
            return table[act]

        def gelu(self, x):
            return x * torch.sigmoid(1.702 * x)

        def forward(self, x):
            return self.act_fn(self.dense_1(x))
    """)


def test_a_table_entry_naming_a_method_that_computes_gelu_is_a_gelu():
    from adopter.synth import fix_text

    assert finding_at(METHOD_TABLE, "ADP006", "# table-site") is not None
    # a method held as a value: passed to the kernel in eager code (which runs it as written: it
    # is no function the kernel probes), the original under TorchScript (fixrate2, session 34)
    fixed = fix_text(METHOD_TABLE, "model.py", rules("ADP006"))
    assert fixed.error is None and [f.rule for f in fixed.applied] == ["ADP006"] and not fixed.skipped
    assert "jit.is_scripting() else bias_gelu(" in fixed.text


def test_tables_of_methods_without_the_gelu_formula_are_no_gelu():
    assert found(NO_GELU_IN_TABLE, "ADP006") == []


LIST_BUILT = textwrap.dedent("""\
    from torch import nn


    class MLP(nn.Module):
        def __init__(self, input_dim, dims, dropout=0.0):
            super().__init__()
            layers = list()
            for i_dim in dims:
                layers.append(nn.Linear(input_dim, i_dim))
                layers.append(nn.BatchNorm1d(i_dim))  # bn-site
                layers.append(nn.ReLU())
                layers.append(nn.Dropout(p=dropout))
                input_dim = i_dim
            self.mlp = nn.Sequential(*layers)

        def forward(self, x):
            return self.mlp(x)
    """)

LIST_COPIED = textwrap.dedent("""\
    from torch import nn


    class MLP(nn.Module):
        def __init__(self, input_dim, dims, head):
            super().__init__()
            layers = list(head)
            layers.append(nn.BatchNorm1d(input_dim))
            self.mlp = nn.Sequential(*layers)

        def forward(self, x):
            return self.mlp(x)
    """)


def test_a_list_started_with_the_builtin_list_call_is_a_list_of_layers():
    assert finding_at(LIST_BUILT, "ADP008", "# bn-site") is not None


def test_a_copy_of_an_unknown_list_is_not_read_as_empty():
    # list(head): whatever head holds comes first, so what precedes the BatchNorm is not known
    assert found(LIST_COPIED, "ADP008") == []


# ---------------------------------------- ADP007: None entries filtered out of a list of layers

NONE_FILTERED = textwrap.dedent("""\
    from torch import nn


    class ImageEncoder(nn.Module):
        def __init__(self, cin, cout, apply_batch_normalization=True, p=0.1):
            super().__init__()
            layers = [
                nn.BatchNorm2d(cin) if apply_batch_normalization else None,
                nn.Dropout(p),
                nn.Conv2d(cin, cout, kernel_size=3),
                nn.BatchNorm2d(cout) if apply_batch_normalization else None,  # bn-site
                nn.ReLU(),
            ]
            self.enc = nn.Sequential(*(layer for layer in layers if layer is not None))

        def forward(self, x):
            return self.enc(x)
    """)

OTHER_FILTER = textwrap.dedent("""\
    from torch import nn


    class ImageEncoder(nn.Module):
        def __init__(self, cin, cout, keep):
            super().__init__()
            layers = [nn.Conv2d(cin, cout, kernel_size=3), nn.BatchNorm2d(cout), nn.ReLU()]
            self.enc = nn.Sequential(*[layer for layer in layers if keep(layer)])

        def forward(self, x):
            return self.enc(x)
    """)


def test_a_list_with_its_none_entries_filtered_out_keeps_its_layers_in_order():
    assert finding_at(NONE_FILTERED, "ADP007", "# bn-site") is not None


def test_a_list_filtered_by_anything_but_none_is_not_read_member_by_member():
    # keep(layer) may drop the BatchNorm (or the convolution): nothing is known of the order
    assert found(OTHER_FILTER, "ADP007") == []


# ---------------------------------------- ADP010: probabilities a step stores on the module

STORED_BY_THE_STEP = textwrap.dedent("""\
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Interacting(nn.Module):
        def __init__(self, dim, heads=2, scaling=False):
            super().__init__()
            self.heads = heads
            self.scaling = scaling
            self.w_q = nn.Parameter(torch.randn(dim, dim))
            self.w_k = nn.Parameter(torch.randn(dim, dim))
            self.w_v = nn.Parameter(torch.randn(dim, dim))

        def forward(self, x):
            q = torch.stack(torch.split(x @ self.w_q, x.shape[-1] // self.heads, dim=2))
            k = torch.stack(torch.split(x @ self.w_k, x.shape[-1] // self.heads, dim=2))
            v = torch.stack(torch.split(x @ self.w_v, x.shape[-1] // self.heads, dim=2))
            scores = torch.einsum("bnik,bnjk->bnij", q, k)
            if self.scaling:
                scores /= q.shape[-1] ** 0.5
            self.attention_map = F.softmax(scores, dim=-1)  # stored-site
            out = torch.matmul(self.attention_map, v)
            return torch.cat(torch.split(out, 1), dim=-1).squeeze(0)
    """)


def test_probabilities_a_step_stores_on_the_module_are_reported_not_fixed():
    # the fused call would stop setting self.attention_map, which code outside may read
    from adopter.synth import fix_text

    assert finding_at(STORED_BY_THE_STEP, "ADP010", "# stored-site") is not None
    fixed = fix_text(STORED_BY_THE_STEP, "model.py", rules("ADP010"))
    assert fixed.error is None and fixed.text == STORED_BY_THE_STEP and not fixed.applied
    assert any("stored in `self.attention_map`" in why for _, why in fixed.skipped)


def test_the_same_attention_with_its_probabilities_in_a_local_name_is_fixed():
    from adopter.synth import fix_text

    local = STORED_BY_THE_STEP.replace("self.attention_map", "attention_map")
    fixed = fix_text(local, "model.py", rules("ADP010"))
    assert fixed.error is None and fixed.applied and "scaled_dot_product_attention(" in fixed.text
