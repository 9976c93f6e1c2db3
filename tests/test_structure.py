"""One test per abstraction feature (SPEC section 1), each with a fixture of our own."""

import textwrap

from adopter.describe import describe_file
from adopter.engine import parse
from adopter.structure import module_structure

HEADER = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n"


def dl_nodes(source, cls, method="forward"):
    text = HEADER + textwrap.dedent(source)
    structure = module_structure(parse(text, "m.py"), None, text)
    flow = structure.classes[cls].flow(method)
    return [n for n in flow.nodes if n.kind in ("layer", "call", "op", "method")]


def test_aliases_resolve_to_fully_qualified_names(findings):
    src = """
    import torch.nn.functional as Fn
    from torch.nn import functional
    from torch.nn.functional import softmax as sm
    import torch as T

    def a(x): return Fn.softmax(x, dim=-1)
    def b(x): return functional.softmax(x, dim=-1)
    def c(x): return sm(x, dim=-1)
    def d(x): return T.nn.functional.softmax(x, -1)
    def e(x): return softmax(x, dim=-1)  # not imported: a different function
    """
    assert [line for _, line in findings(src, "ADP004")] == [7, 8, 9, 10]


def test_nested_calls_are_unchained():
    nodes = dl_nodes(
        """
        class Out(nn.Module):
            def __init__(self):
                super().__init__()
                self.drop = nn.Dropout(0.1)
                self.norm = nn.LayerNorm(4)

            def forward(self, h, r):
                return self.norm(self.drop(h) + r)
        """,
        "Out",
    )
    assert [(n.kind, n.op) for n in nodes] == [("layer", "self.drop"), ("op", "+"), ("layer", "self.norm")]
    assert nodes[1].args[0] == nodes[0].outs[0] and nodes[2].args[0] == nodes[1].outs[0]
    assert nodes[0].types == {"torch.nn.Dropout"} and nodes[2].types == {"torch.nn.LayerNorm"}


BLOCK = """
from torch import nn

class Block(nn.Module):
    def __init__(self, use_bn=True):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3)
        {bn}

    def forward(self, x):
{body}
"""


def block(body, bn="self.bn = nn.BatchNorm2d(3)"):
    return BLOCK.format(bn=bn, body=textwrap.indent(textwrap.dedent(body), " " * 8))


def test_if_straddling_match(findings):
    # The paper's DPT case: conv before the if, bn inside it.
    src = block("""
        x = self.conv(x)
        if self.use_bn:
            x = self.bn(x)
        return x
    """)
    assert findings(src, "ADP007") == [("ADP007", 12)]


def test_init_bindings_in_branches_and_helpers(findings):
    src = block(
        """
        x = self.conv(x)
        return self.bn(x)
        """,
        bn="""if use_bn:
            self.bn = nn.BatchNorm2d(3)
        else:
            self.bn = nn.Identity()""",
    )
    assert findings(src, "ADP007") == [("ADP007", 15)]
    helper = """
    from torch import nn
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self._build()

        def _build(self):
            self.conv = nn.Conv2d(3, 3, 3)
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x):
            return self.bn(self.conv(x))
    """
    assert findings(helper, "ADP007") == [("ADP007", 13)]


def test_loop_bodies_are_taken_once(findings):
    src = block("""
        for _ in range(3):
            x = self.conv(x)
            x = self.bn(x)
        while x.sum() > 0:
            x = x - 1
        return x
    """)
    assert findings(src, "ADP007") == [("ADP007", 13)]


def test_helper_methods_are_followed(findings):
    src = """
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3)
            self.bn = nn.BatchNorm2d(3)

        def forward(self, x):
            y = self.conv(x)
            return self.normalize(y)

        def normalize(self, features):
            return self.bn(features)
    """
    assert findings(src, "ADP007") == [("ADP007", 12)]


def test_callable_argument_is_followed(findings):
    src = """
    from torch import nn
    from transformers.activations import ACT2FN
    from transformers.pytorch_utils import apply_chunking_to_forward

    class Layer(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.ffn = nn.Linear(4, 4)
            self.activation = ACT2FN[config.hidden_act]

        def forward(self, x):
            return apply_chunking_to_forward(self.ff_chunk, 0, 1, x)

        def ff_chunk(self, h):
            h = self.ffn(h)
            return self.activation(h)
    """
    assert findings(src, "ADP006") == [("ADP006", 16)]


def test_inherited_bindings(findings):
    src = """
    from torch import nn

    class Base(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3)
            self.bn = nn.BatchNorm2d(3)

    class Child(Base):
        def forward(self, x):
            return self.bn(self.conv(x))
    """
    assert findings(src, "ADP007") == [("ADP007", 12)]


def test_module_list_members(findings):
    src = """
    from torch import nn

    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.drops = nn.ModuleList([nn.Dropout(0.1) for _ in range(2)])
            self.norm = nn.LayerNorm(4)

        def forward(self, x, r):
            for drop in self.drops:
                x = drop(x)
            return self.norm(x + r)
    """
    assert findings(src, "ADP005") == [("ADP005", 12)]


def test_sequential_members(findings):
    src = """
    from torch import nn

    class Stem(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())

        def forward(self, x):
            x = self.body(x)
            return x
    """
    assert findings(src, "ADP007") == [("ADP007", 7)]


def test_correlated_guards_give_two_structures_not_four(findings):
    # Same guard twice: the path that skips the first bn skips the second too, so conv2
    # never meets bn1's output on a real path.
    src = """
    from torch import nn

    class Fusion(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 3, 3)
            self.conv2 = nn.Conv2d(3, 3, 3)
            self.bn1 = nn.BatchNorm2d(3)
            self.bn2 = nn.BatchNorm2d(3)

        def forward(self, x):
            x = self.conv1(x)
            if self.use_bn:
                x = self.bn1(x)
            y = self.conv2(x)
            if self.use_bn:
                y = self.bn2(y)
            return y
    """
    assert findings(src, "ADP007") == [("ADP007", 13), ("ADP007", 16)]
    text = textwrap.dedent(src)
    described = describe_file(text, "m.py", "Fusion")
    assert "paths: 2" in described


def test_match_statement_cases(findings):
    src = block("""
        x = self.conv(x)
        match self.mode:
            case "bn":
                x = self.bn(x)
            case _:
                pass
        return x
    """)
    assert findings(src, "ADP007") == [("ADP007", 12)]


def test_try_with_and_async(findings):
    src = """
    import torch.nn.functional as F

    async def attend(x, lock):
        async with lock:
            try:
                return F.softmax(await x, dim=-1)
            except RuntimeError:
                return F.softmax(x, -1)
            finally:
                pass
    """
    assert [line for _, line in findings(src, "ADP004")] == [7, 9]


def test_every_match_in_a_sequence_is_reported(findings):
    src = """
    import torch.nn.functional as F

    def many(a, b, c):
        a = F.softmax(a, dim=-1)
        b = F.softmax(b, dim=-1)
        c = F.softmax(c, dim=-1)
        return a, b, c
    """
    assert [line for _, line in findings(src, "ADP004")] == [5, 6, 7]


def test_forward_with_twenty_ifs_does_not_blow_up(findings, monkeypatch):
    import adopter.match

    ifs = "\n".join(f"if flag{i}:\n    z = z + {i}" for i in range(24))
    src = block("x = self.conv(x)\n" + ifs + "\nx = self.bn(x)\nreturn x\n")
    # The search gives up on a start node after MAX_STEPS_PER_START edge visits.  Enumerating
    # the 2**24 paths would need millions; the memoised graph search needs a few per if.
    monkeypatch.setattr(adopter.match, "MAX_STEPS_PER_START", 24 * 20)
    assert findings(src, "ADP007") == [("ADP007", 11)]


def test_data_flow_and_liveness(findings):
    unrelated = block("""
        y = self.conv(x)
        z = self.bn(x)
        return y + z
    """)
    assert findings(unrelated, "ADP007") == []
    intermediate_used = block("""
        y = self.conv(x)
        z = self.bn(y)
        return z, y
    """)
    assert findings(intermediate_used, "ADP007") == []
    overwritten = block("""
        y = self.conv(x)
        y = y * 2
        return self.bn(y)
    """)
    assert findings(overwritten, "ADP007") == []


def test_structure_command_shows_bindings_and_nodes():
    text = HEADER + textwrap.dedent(block("""
        x = self.conv(x)
        return self.bn(x)
    """))
    shown = describe_file(text, "m.py", "Block")
    assert "self.conv = torch.nn.Conv2d(...)" in shown
    assert "x = torch.nn.Conv2d[self.conv](x)" in shown
    assert "torch.nn.BatchNorm2d[self.bn](x)" in shown


def test_a_model_class_imported_from_a_sibling_module_is_that_class(findings):
    src = """
    from torch import nn
    from .modeling_bert import BertSelfAttention
    from other.lib import BertSelfAttentionLike


    class Layer(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.attention = BertSelfAttention(config)
            self.other = BertSelfAttentionLike(config)

        def forward(self, hidden_states):
            hidden_states = self.other(hidden_states)
            return self.attention(hidden_states)
    """
    assert findings(src, "ADP001") == [("ADP001", 15)]


def test_code_a_forward_cannot_reach_is_not_a_model_structure(findings):
    src = """
    import torch.nn.functional as F
    from torch import nn


    def pick(logits):  # used by generate only
        return F.softmax(logits, dim=-1)


    def _unused(scores):  # private and called by nothing: dead code
        return F.softmax(scores, dim=-1)


    def shared(scores):
        return F.softmax(scores, dim=-1)


    class Head(nn.Module):
        def forward(self, scores):
            return self._attend(scores)

        def _attend(self, scores):
            return shared(scores)

        def generate(self, logits):
            return pick(logits)
    """
    assert findings(src, "ADP004") == [("ADP004", 15)]
    # a public function nothing in the file calls is the file's API for other files (fairseq's
    # apply_rotary_pos_emb): its code runs in their models
    assert findings(src.replace("def _unused(", "def unused("), "ADP004") == [("ADP004", 11), ("ADP004", 15)]
    functional_only = """
    import torch.nn.functional as F


    def attend(scores):
        return F.softmax(scores, dim=-1)
    """
    assert findings(functional_only, "ADP004") == [("ADP004", 6)]


def test_a_public_method_that_runs_the_modules_own_layers_is_model_structure(findings):
    """Feature-extraction methods (timm's ``forward_intermediates``) run the stem's layers
    outside ``forward``; a sampling method that calls the model itself does not."""
    src = """
    import torch.nn.functional as F
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3)
            self.bn1 = nn.BatchNorm2d(8)
            self.head = nn.Linear(8, 4)

        def features(self, x):
            x = self.conv1(x)
            return self.bn1(x).relu()

        def forward(self, x):
            return self.head(x.mean((2, 3)))

        def sample(self, x):
            return F.softmax(self(x), dim=-1)

        def _debug(self, x):
            return self.bn1(self.conv1(x))
    """
    assert findings(src, "ADP007", "ADP004") == [("ADP007", 14)]


def test_a_variable_overwritten_by_a_pattern_node_is_a_new_value(findings):
    """``x = x.to(...)`` then ``x * ...``: the later ``x`` is not the value the pattern bound
    before (names are keys, so the matcher marks the binding stale when a node reassigns it)."""
    t5_style = """
        import torch

        def norm(x, eps):
            variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
            return x * torch.rsqrt(variance + eps)
    """
    llama_style = """
        import torch

        def norm(x, eps):
            x = x.to(torch.float32)
            variance = x.pow(2).mean(-1, keepdim=True)
            return x * torch.rsqrt(variance + eps)
    """
    from adopter.engine import analyze, match_rule
    from adopter.ruleset import load_rules
    from adopter.structure import module_structure
    import ast
    import textwrap

    rule = next(r for r in load_rules() if r.id == "ADP011")
    for source, alternatives in ((t5_style, {1}), (llama_style, {0})):
        text = textwrap.dedent(source)
        matches = match_rule(rule, module_structure(ast.parse(text), None, text))
        # one finding each, from the right alternative: the upcast pattern (2) must not
        # match LLaMA's code, where the upcast copy replaces x
        assert {m.alternative for m in matches} == alternatives
        assert len(analyze(text, "m.py", [rule]).findings) == 1


def test_a_scripts_top_level_code_is_a_root(findings):
    """Training scripts build their optimizer at module level; functions the script calls
    stay roots of their own (a match is reported once)."""
    script = """
        import torch

        model = torch.nn.Linear(4, 4)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)


        def main():
            other = torch.optim.SGD(model.parameters(), lr=0.1)
            return other


        if __name__ == "__main__":
            main()
    """
    assert findings(script, "ADP012") == [("ADP012", 5), ("ADP012", 9)]
    library = """
        import torch
        ALL = ["f"]


        def f(m):
            return torch.optim.Adam(m.parameters())
    """
    assert findings(library, "ADP012") == [("ADP012", 7)]


def test_a_scripts_own_statements_reach_code_too(findings):
    src = """
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Net(nn.Module):
        def forward(self, x):
            return x


    def _unused(scores):
        return F.softmax(scores, dim=-1)


    def train(model):
        return torch.optim.AdamW(model.parameters(), lr=1e-3)


    if __name__ == "__main__":
        train(Net())
    """
    assert findings(src, "ADP004", "ADP012") == [("ADP012", 17)]


def test_a_value_read_through_a_subscript_or_attribute_stays_alive():
    """``self.proj(h[0])`` reads ``h``: a fused rewrite that no longer computes ``h`` must not
    be proposed (the opaque value ``h[0]`` carries the names it reads)."""
    import textwrap

    from adopter.engine import analyze
    from adopter.ruleset import load_rules

    rule = next(r for r in load_rules() if r.id == "ADP005")
    source = textwrap.dedent('''
        import torch.nn as nn


        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.drop = nn.Dropout(0.1)
                self.norm = nn.LayerNorm(8)
                self.proj = nn.Linear(8, 8)

            def forward(self, x, res):
                h = self.drop(x)
                y = self.norm(h + res)
                out = self.proj(h[0])
                return out, y
    ''')
    assert analyze(source, "m.py", [rule]).findings == []
    assert analyze(source.replace("h[0]", "res[0]"), "m.py", [rule]).findings != []


PARTIAL_MAP = """
from functools import partial


def scale_shift(scale, t):
    return t * scale + t


class Block(nn.Module):
    def forward(self, q, k, s):
{body}
        return q, k
"""


def _partial_map_nodes(body):
    nodes = dl_nodes(PARTIAL_MAP.format(body=textwrap.indent(textwrap.dedent(body), " " * 8)), "Block")
    return [(n.op, tuple(getattr(a, "text", None) for a in n.args)) for n in nodes if n.kind == "op"]


def test_a_helper_applied_through_partial_and_map_binds_each_tensor_to_its_own_parameter():
    # t * scale: the tensor is the helper's second parameter, the partial's argument its first
    want = [("*", ("q", "s")), ("+", ("", "q")), ("*", ("k", "s")), ("+", ("", "k"))]
    forms = [
        "fn = partial(scale_shift, s)\nq, k = map(fn, (q, k))",
        "q, k = map(partial(scale_shift, s), (q, k))",
        "q, k = map(lambda t: scale_shift(s, t), (q, k))",
        "fn = partial(scale_shift, s)\nq = fn(q)\nk = fn(k)",
    ]
    for body in forms:
        assert _partial_map_nodes(body) == want, body


def test_map_with_a_builtin_shadowed_or_elements_reading_a_rebound_name_is_not_unrolled():
    # q = f(k) first would change what the second element reads: the lambda's body is read
    # once, on its own parameter, as before
    once = [("*", ("t", "s")), ("+", ("", "t"))]
    assert _partial_map_nodes("q, k = map(lambda t: scale_shift(s, t), (k, q))") == once
    assert _partial_map_nodes("map = print\nq, k = map(lambda t: scale_shift(s, t), (q, k))") == once
