"""Forms from blind batch corpus24 (transformers 4.45.2 files: a feed-forward module that ends in
a functional dropout, an LM head whose width is chosen between two vocabulary sizes, a softmax
multiplied by a matrix built from itself): our own fixtures, each with near-misses."""

from __future__ import annotations

import textwrap

from corpus_forms import finding_at, found

# ---------- ADP005: a module whose output is a functional dropout's, added and normalised

FUNCTIONAL_DROPOUT_END = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn import LayerNorm


    class FeedForward(nn.Module):
        def __init__(self, d, p):
            super().__init__()
            self.up = nn.Linear(d, 4 * d)
            self.down = nn.Linear(4 * d, d)
            self.p = p

        def forward(self, h):
            h = torch.relu(self.up(h))
            h = self.down(h)
            h = nn.functional.dropout(h, p=self.p, training=self.training)
            return h


    class Block(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.ff = FeedForward(d, 0.1)
            self.norm = LayerNorm(d)

        def forward(self, h):
            out = self.ff(h)
            h = self.norm(out + h)
            return h
""")


def test_a_module_ending_in_a_functional_dropout_feeds_add_and_layernorm():
    assert finding_at(FUNCTIONAL_DROPOUT_END, "ADP005", "h = self.norm(out + h)") is not None


def test_the_dropout_returned_directly_and_the_residual_first():
    text = FUNCTIONAL_DROPOUT_END.replace(
        "        h = nn.functional.dropout(h, p=self.p, training=self.training)\n        return h\n",
        "        return nn.functional.dropout(h, self.p, self.training)\n").replace("out + h", "h + out")
    assert finding_at(text, "ADP005", "h = self.norm(h + out)") is not None


def test_a_functional_dropout_without_training_is_not_read_as_the_output_dropout():
    # ADP005's functional forms need `training` given (dropout in eval too otherwise)
    text = FUNCTIONAL_DROPOUT_END.replace(", training=self.training)", ")")
    assert found(text, "ADP005") == []
    text = FUNCTIONAL_DROPOUT_END.replace("training=self.training", "training=False")
    assert found(text, "ADP005") == []


def test_a_module_ending_in_another_function_is_not_a_dropout():
    text = FUNCTIONAL_DROPOUT_END.replace("nn.functional.dropout(h, p=self.p, training=self.training)",
                                          "nn.functional.gelu(h)")
    assert found(text, "ADP005") == []


def test_the_module_output_used_again_is_not_fused():
    text = FUNCTIONAL_DROPOUT_END.replace(
        "        h = self.norm(out + h)\n        return h\n",
        "        h = self.norm(out + h)\n        return h, out\n")
    assert found(text, "ADP005") == []


# ---------- ADP015: an LM head whose width is chosen between two vocabulary sizes

CHOSEN_VOCABULARY = textwrap.dedent("""\
    import torch
    from torch import nn
    from torch.nn import CrossEntropyLoss


    class Decoder(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.embed = nn.Embedding(config.target_vocab, config.d_model)
            self.layer = nn.Linear(config.d_model, config.d_model)

        def forward(self, ids):
            return self.layer(self.embed(ids))


    class Seq2Seq(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config
            self.shared = nn.Embedding(config.vocab_size, config.d_model)
            self.decoder = Decoder(config)
            width = config.vocab_size if config.tie_vocabularies else config.target_vocab
            self.register_buffer("logit_bias", torch.zeros((1, width)))
            self.lm_head = nn.Linear(config.d_model, width, bias=False)

        def forward(self, ids, labels=None):
            h = self.decoder(ids)
            logits = self.lm_head(h) + self.logit_bias
            loss = None
            if labels is not None:
                loss_fct = CrossEntropyLoss()
                loss = loss_fct(logits.view(-1, self.config.target_vocab), labels.view(-1))
            return loss, logits
""")


def test_a_head_whose_width_is_one_of_two_embedded_vocabularies():
    assert finding_at(CHOSEN_VOCABULARY, "ADP015", "logits = self.lm_head(h) + self.logit_bias") is not None


def test_a_width_choosing_a_vocabulary_or_a_label_count_is_no_vocabulary():
    text = CHOSEN_VOCABULARY.replace("config.vocab_size if config.tie_vocabularies else config.target_vocab",
                                     "config.vocab_size if config.tie_vocabularies else config.num_labels").replace(
        "self.config.target_vocab), labels", "self.config.num_labels), labels")
    assert found(text, "ADP015") == []


def test_a_width_name_bound_twice_is_not_read():
    text = CHOSEN_VOCABULARY.replace(
        "        self.register_buffer",
        "        if config.small:\n            width = config.num_labels\n        self.register_buffer").replace(
        "self.config.target_vocab), labels", "self.config.num_labels), labels")
    assert found(text, "ADP015") == []


# ---------- ADP010: a softmax multiplied by a matrix built from the probabilities

SELF_VALUE = textwrap.dedent("""\
    import torch
    from torch import nn


    class Kernel(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.q = nn.Linear(d, d)
            self.k = nn.Linear(d, d)
            self.v = nn.Linear(d, d)

        def forward(self, x):
            q, k = self.q(x), self.k(x)
            p = torch.softmax(torch.matmul(q, k.transpose(-1, -2)), dim=-1)
            v = p.transpose(-1, -2) * 0.5
            return torch.matmul(p, v)
""")

ITERATIVE_INVERSE = textwrap.dedent("""\
    import torch
    from torch import nn


    class Landmarks(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.q = nn.Linear(d, d)
            self.k = nn.Linear(d, d)

        def pseudo_inverse(self, mat, steps=4):
            a = mat
            z = a.transpose(-1, -2) / torch.max(torch.sum(a, dim=-2))
            for _ in range(steps):
                az = torch.matmul(a, z)
                z = torch.matmul(0.25 * z, 13 - az)
            return z

        def forward(self, x):
            q = self.q(x).reshape(x.shape[0], 8, -1, x.shape[-1]).mean(dim=-2)
            k = self.k(x).reshape(x.shape[0], 8, -1, x.shape[-1]).mean(dim=-2)
            kernel = torch.softmax(torch.matmul(q, k.transpose(-1, -2)), dim=-1)
            return self.pseudo_inverse(kernel)
""")


def test_a_value_computed_from_the_probabilities_is_not_attention():
    assert found(SELF_VALUE, "ADP010") == []


def test_a_value_projected_from_the_input_is_attention():
    text = SELF_VALUE.replace("v = p.transpose(-1, -2) * 0.5", "v = self.v(x) * 0.5")
    assert finding_at(text, "ADP010", "p = torch.softmax(") is not None


def test_a_value_built_from_the_scores_is_not_attention():
    text = SELF_VALUE.replace(
        "        p = torch.softmax(torch.matmul(q, k.transpose(-1, -2)), dim=-1)\n"
        "        v = p.transpose(-1, -2) * 0.5\n",
        "        s = torch.matmul(q, k.transpose(-1, -2))\n"
        "        v = s.transpose(-1, -2) * 0.5\n"
        "        p = torch.softmax(s, dim=-1)\n")
    assert found(text, "ADP010") == []


def test_a_kernel_multiplied_by_its_own_iterative_inverse_is_not_attention():
    assert found(ITERATIVE_INVERSE, "ADP010") == []


def test_a_name_reused_after_the_probabilities_does_not_make_the_value_depend_on_them():
    # ``v`` is rebound from the input after an earlier, unrelated use of the name
    text = SELF_VALUE.replace(
        "        v = p.transpose(-1, -2) * 0.5\n",
        "        v = p.sum()\n        v = self.v(x)\n")
    assert finding_at(text, "ADP010", "p = torch.softmax(") is not None


# ---------- ADP006: a stateless module whose forward returns a GELU function of its input

GELU_WRAPPER = textwrap.dedent("""\
    from torch import nn
    from transformers.activations import gelu


    class GeLU(nn.Module):
        def __init__(self):
            super().__init__()

        def forward(self, x):
            return gelu(x)


    class AnswerHead(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.fc = nn.Sequential(
                nn.Linear(d, d * 2),
                GeLU(),
                nn.LayerNorm(d * 2),
                nn.Linear(d * 2, n),
            )

        def forward(self, h):
            return self.fc(h)
""")


def test_a_module_returning_transformers_gelu_follows_a_linear_in_a_sequential():
    assert finding_at(GELU_WRAPPER, "ADP006", "GeLU(),") is not None


def test_a_module_returning_functional_gelu_held_as_an_attribute():
    text = GELU_WRAPPER.replace("from transformers.activations import gelu", "from torch.nn.functional import gelu")
    assert finding_at(text, "ADP006", "GeLU(),") is not None
    text = text.replace("return gelu(x)", "return gelu(x, approximate='tanh')")
    assert finding_at(text, "ADP006", "GeLU(),") is not None


def test_a_module_returning_relu_or_a_scaled_gelu_is_not_gelu():
    assert found(GELU_WRAPPER.replace("from transformers.activations import gelu",
                                      "from torch.nn.functional import relu as gelu"), "ADP006") == []
    assert found(GELU_WRAPPER.replace("return gelu(x)", "return gelu(x) * 2"), "ADP006") == []
    # a module with state of its own is not a stateless activation
    assert found(GELU_WRAPPER.replace("super().__init__()\n\n    def forward(self, x)",
                                      "super().__init__()\n        self.scale = nn.Parameter(x)\n\n"
                                      "    def forward(self, x)"), "ADP006") == []


def test_another_packages_gelu_name_is_not_read():
    text = GELU_WRAPPER.replace("from transformers.activations import gelu", "from mypkg.activations import gelu")
    assert found(text, "ADP006") == []
