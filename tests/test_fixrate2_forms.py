"""Findings that ``adopter fix`` reported but did not patch (fixrate2, session 34).

An activation held as a function (``self.act = F.gelu``, a constructor default, an activation
table of functions keyed at run time, a same-file ``def gelu(x)`` written out) before which a
Linear runs (ADP006) or whose gate is a Linear's output (ADP013) was declined: "a function held
as a value, not a layer: the kernel takes a layer module (and TorchScript cannot pass a function
as a value)".  The kernels call the activation they are given, so eager code may pass the
function; TorchScript compiles only the first branch of a conditional on
``torch.jit.is_scripting()``, so the patch is ``(<the code as written> if
torch.jit.is_scripting() else <kernel call>)`` and a module that scripted before still does.
A match over two statements (``h = self.dense(x)`` then ``h = self.act(h)``) writes its
original as one expression.  The kept
original runs only under TorchScript, where the kernels run as written: a match there (the
first branch of a conditional on ``is_scripting()``) is not reported, by any rule.

Still declined, with the reason: a match whose original cannot be written as one expression (a
deleted statement that is no ``name = value``).
"""

from __future__ import annotations

import textwrap

from corpus_forms import float64_pair, found, rules

from adopter.synth import fix_text

HELD = textwrap.dedent("""\
    import math

    import torch
    import torch.nn.functional as F
    from torch import nn


    def gelu(x):
        return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


    ACT = {"gelu": gelu, "relu": F.relu}


    class Given(nn.Module):
        def __init__(self, d=8, nonlinearity=F.gelu):
            super().__init__()
            self.up = nn.Linear(d, 4 * d)
            self.nonlinearity = nonlinearity

        def forward(self, x):
            return self.nonlinearity(self.up(x))


    class Intermediate(nn.Module):
        def __init__(self, d=8, act="gelu"):
            super().__init__()
            self.dense = nn.Linear(d, 2 * d)
            self.act_fn = ACT[act]

        def forward(self, hidden_states):
            hidden_states = self.dense(hidden_states)
            hidden_states = self.act_fn(hidden_states)
            return hidden_states


    class Gate(nn.Module):
        def __init__(self, d=8, gate_fn=F.silu):
            super().__init__()
            self.gate = nn.Linear(d, d)
            self.up = nn.Linear(d, d)
            self.down = nn.Linear(d, d)
            self.gate_fn = gate_fn

        def forward(self, x):
            return self.down(self.gate_fn(self.gate(x)) * self.up(x))
""")


def _fix(code: str, *ids: str):
    return fix_text(code, "model.py", rules(*(ids or ("ADP006", "ADP013"))))


def _same(a, b, shape=(3, 5, 8)):
    import torch

    for mode in ("train", "eval"):
        getattr(a, mode)()
        getattr(b, mode)()
        x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
        y = x.detach().clone().requires_grad_(True)
        out_a, out_b = a(x), b(y)
        torch.testing.assert_close(out_b, out_a)
        out_a.square().sum().backward()
        out_b.square().sum().backward()
        torch.testing.assert_close(y.grad, x.grad)
        for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            torch.testing.assert_close(pb.grad, pa.grad, msg=name)
            pa.grad = pb.grad = None


def test_functions_held_as_values_are_patched_and_compute_the_same():
    result = _fix(HELD)
    assert sorted(f.rule for f in result.applied) == ["ADP006", "ADP006", "ADP013"], result.skipped
    assert not result.skipped
    text = result.text
    assert ("return (self.nonlinearity(self.up(x)) if torch.jit.is_scripting() "
            "else bias_gelu(x, self.up, self.nonlinearity))") in text
    # the two statements' original as one expression
    assert ("hidden_states = (self.act_fn(self.dense(hidden_states)) if torch.jit.is_scripting() "
            "else bias_gelu(hidden_states, self.dense, self.act_fn))") in text
    assert "else liger_swiglu(self.gate(x), self.up(x), self.gate_fn)" in text
    for cls, kwargs in (("Given", {}), ("Intermediate", {}), ("Intermediate", {"act": "relu"}), ("Gate", {})):
        _same(*float64_pair(HELD, text, cls, **kwargs))


def _loaded(tmp_path, code: str, name: str):
    """The module of ``code`` imported from a file (TorchScript reads a function's source)."""
    import importlib.util

    path = tmp_path / f"{name}.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scripted_agrees(tmp_path, code: str, fixed: str, cls: str, name: str) -> None:
    import torch

    torch.manual_seed(0)
    a = getattr(_loaded(tmp_path, code, f"{name}_original"), cls)().double().eval()
    b = getattr(_loaded(tmp_path, fixed, f"{name}_fixed"), cls)().double().eval()
    b.load_state_dict(a.state_dict(), strict=True)
    scripted = torch.jit.script(b)
    x = torch.randn(2, 8, dtype=torch.float64)
    torch.testing.assert_close(scripted(x), a(x))
    torch.testing.assert_close(torch.jit.script(a)(x), a(x))  # (the original scripted too)


def test_patched_modules_still_script_and_agree(tmp_path):
    text = _fix(HELD).text
    for cls in ("Given", "Intermediate", "Gate"):
        _scripted_agrees(tmp_path, HELD, text, cls, f"held_{cls.lower()}")


def test_the_kept_original_is_not_found_again():
    text = _fix(HELD).text
    assert found(text, "ADP006") == [] and found(text, "ADP013") == []
    again = _fix(text)
    assert again.text == text and not again.applied and not again.skipped


def test_a_module_without_import_torch_guards_with_an_imported_is_scripting(tmp_path):
    code = textwrap.dedent("""\
        import torch.nn.functional as F
        from torch import nn


        class Block(nn.Module):
            def __init__(self, d=8):
                super().__init__()
                self.fc = nn.Linear(d, d)
                self.act = F.gelu

            def forward(self, x):
                return self.fc(x) + self.act(self.fc(x))
    """)
    result = _fix(code, "ADP006")
    assert [f.rule for f in result.applied] == ["ADP006"]
    assert "from torch.jit import is_scripting" in result.text
    assert "(self.act(self.fc(x)) if is_scripting() else bias_gelu(x, self.fc, self.act))" in result.text
    _same(*float64_pair(code, result.text, "Block"))
    _scripted_agrees(tmp_path, code, result.text, "Block", "imported")


def test_a_chunked_gate_held_as_a_function_is_patched():
    # xLSTM's feed-forward: the halves of one projection, the gate's activation from a table of
    # functions; the statement splitting them stays, the product reads its names
    code = textwrap.dedent("""\
        import torch
        import torch.nn.functional as F
        from torch import nn

        ACTS = {"gelu": F.gelu, "swish": F.silu}


        class Glu(nn.Module):
            def __init__(self, d=8, act="swish"):
                super().__init__()
                self.w12 = nn.Linear(d, 2 * d)
                self.act = ACTS[act]

            def forward(self, x):
                x1, x2 = self.w12(x).chunk(2, dim=-1)
                return self.act(x1) * x2
    """)
    result = _fix(code, "ADP013")
    assert [f.rule for f in result.applied] == ["ADP013"]
    assert "return (self.act(x1) * x2 if torch.jit.is_scripting() else liger_swiglu(x1, x2, self.act))" in result.text
    for act in ("swish", "gelu"):
        _same(*float64_pair(code, result.text, "Glu", act=act))


def test_an_original_not_written_as_one_expression_stays_declined_with_its_reason():
    # an annotated assignment of the Linear's output: no `name = value` to write into the
    # activation's call, so the original cannot stand beside the kernel call
    code = textwrap.dedent("""\
        import torch
        import torch.nn.functional as F
        from torch import nn


        class Block(nn.Module):
            def __init__(self, d=8, act=F.gelu):
                super().__init__()
                self.fc = nn.Linear(d, d)
                self.act = act

            def forward(self, x):
                h: torch.Tensor = self.fc(x)
                return self.act(h)
    """)
    assert found(code, "ADP006")
    result = _fix(code, "ADP006")
    assert result.text == code and not result.applied
    assert [why for _, why in result.skipped] and all(
        "function held as a value" in why for _, why in result.skipped)


def test_a_fixed_relu_function_is_no_site():
    code = HELD.replace("nonlinearity=F.gelu", "nonlinearity=F.relu")
    code = code.replace('ACT = {"gelu": gelu, "relu": F.relu}', 'ACT = {"relu": F.relu}').replace(
        'act="gelu"', 'act="relu"')
    assert found(code, "ADP006") == []


# A decline of an earlier round keeps its reason when a patch nearby changes what the matcher
# reads: ADP006 makes the MLP container a FoldingSequential in round one, and the post-norm
# sum over it, declined in that round for the Dropout last in the container (the kernel would
# take over that member), no longer matched in the next; it vanished from the report.
POST_NORM = textwrap.dedent("""\
    from torch import nn


    class Block(nn.Module):
        def __init__(self, d=8):
            super().__init__()
            self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(0.1))
            self.norm = nn.LayerNorm(d)

        def forward(self, x):
            x = x + self.mlp(x)
            x = self.norm(x)
            return x
""")


def test_an_earlier_rounds_decline_keeps_its_reason():
    result = _fix(POST_NORM, "ADP005", "ADP006")
    assert [f.rule for f in result.applied] == ["ADP006"] and "FoldingSequential(" in result.text
    declined = [(f.rule, f.line, f.end_line, why) for f, why in result.skipped]
    lines = result.text.splitlines()
    assert len(declined) == 1 and declined[0][0] == "ADP005", declined
    _, line, end, why = declined[0]
    assert lines[line - 1].strip() == "x = x + self.mlp(x)" and lines[end - 1].strip() == "x = self.norm(x)"
    assert "a Dropout: the kernel would take over that member inside the container" in why
    # the same decline as the rule alone gives
    alone = _fix(POST_NORM, "ADP005")
    assert [w for _, w in alone.skipped] == [why] and alone.text == POST_NORM


def test_a_gate_that_may_be_gelu_or_silu_gets_one_guard():
    # olmo-core: the activation built from a setting may be F.gelu (ADP006's pair) or F.silu
    # (ADP013's gate); ADP013's patch covers both, and its kept original, which only TorchScript
    # runs, is not patched again by ADP006
    code = textwrap.dedent("""\
        import torch
        import torch.nn.functional as F
        from torch import nn


        class FeedForward(nn.Module):
            def __init__(self, d=8, act="silu"):
                super().__init__()
                self.w1 = nn.Linear(d, 2 * d)
                self.w2 = nn.Linear(2 * d, d)
                self.w3 = nn.Linear(d, 2 * d)
                self.act = F.silu if act == "silu" else F.gelu

            def forward(self, x):
                return self.w2(self.act(self.w1(x)) * self.w3(x))
    """)
    assert found(code, "ADP006") and found(code, "ADP013")
    result = _fix(code)
    assert [f.rule for f in result.applied] == ["ADP013"]
    assert result.text.count("is_scripting()") == 1 and "bias_gelu" not in result.text
    for act in ("silu", "gelu"):
        _same(*float64_pair(code, result.text, "FeedForward", act=act))


SCRIPTING_BRANCHES = textwrap.dedent("""\
    import torch
    from torch import nn


    class Block(nn.Module):
        def __init__(self, d=8):
            super().__init__()
            self.fc = nn.Linear(d, d)
            self.act = nn.GELU()

        def forward(self, x):
            return self.act(self.fc(x)) if torch.jit.is_scripting() else x  # scripting only
""")


def test_code_only_torchscript_runs_is_no_site():
    assert found(SCRIPTING_BRANCHES, "ADP006") == []
    # the eager branch of the same conditional is one
    eager = SCRIPTING_BRANCHES.replace("return self.act(self.fc(x)) if torch.jit.is_scripting() else x",
                                       "return x if torch.jit.is_scripting() else self.act(self.fc(x))")
    assert len(found(eager, "ADP006")) == 1


def test_a_conditional_on_another_is_scripting_is_code_that_runs():
    """Only torch's ``is_scripting`` (however imported) marks TorchScript-only code: a file's own
    function of that name decides at run time like any flag, so the pair under it is a site."""
    imported = SCRIPTING_BRANCHES.replace("import torch\n", "import torch\nfrom torch.jit import is_scripting\n") \
        .replace("torch.jit.is_scripting()", "is_scripting()")
    assert found(imported, "ADP006") == []
    own = SCRIPTING_BRANCHES.replace("torch.jit.is_scripting()", "is_scripting()").replace(
        "class Block", "def is_scripting():\n    return False\n\n\nclass Block")
    assert len(found(own, "ADP006")) == 1


def test_a_decline_spans_the_place_check_reports():
    # SAM 3's decoder: the residual sum, then a LayerNorm in either branch of an if; check reports
    # one finding spanning both norms, and the decline named only the first branch's lines
    code = textwrap.dedent("""\
        import torch
        from torch import nn


        class Layer(nn.Module):
            def __init__(self, d=8, split=False):
                super().__init__()
                self.dropout = nn.Dropout(0.1)
                self.norm = nn.LayerNorm(d)
                self.split = split

            def forward(self, x, h, other, early=True):
                x = x + self.dropout(h)
                if self.split:
                    if not early:
                        x = self.norm(x)
                    x = torch.cat((x, other), dim=0)
                    if early:
                        x = self.norm(x)
                else:
                    y = x
                    y = self.norm(y)
                    x = y
                return x
    """)
    (finding,) = found(code, "ADP005")
    result = _fix(code, "ADP005")
    spans = [(f.line, f.end_line) for f, _ in result.skipped]
    assert (finding.line, finding.end_line) in spans, (finding, result.skipped)
