"""Verify repairs for research31's fixed but unverified attention (rafix31, session 25; fixture
``research/harness31``, ours).  Each is a harness gap -- how verify builds or calls a class --
never a tolerance:

- ``.cuda()`` in a constructor (Meta-LLaMA's ``self.cache_k = torch.zeros(...).cuda()``) where
  CUDA is not available: the tensor or module stays on this device, where verify builds and runs
  both the original and the patched module (``parallel.Groups._keep_on_host``, undone on close);
  on main "Torch not compiled with CUDA enabled".
- a channel-first block whose forward hands its input, through a plain copy (``h = x; h =
  self.norm(h)``), to a GroupNorm: the input's channels are the norm's (the LDM AttnBlock; on main
  the width went on the last axis after the build was raised to 32 channels);
- an optional input the forward asserts given (``assert pos_emb is not None``): required; with
  the optional masks left out together once every guess failed;
- ``q_offset: int`` in a module with postponed annotations (the annotation is the text "int"):
  read as the builtin type, so a direct call of a second entry point gets a count;
- a class that needs a package not installed here, whose patch is in a module-level function it
  calls (bitnet's ``BitMGQA`` builds zeta layers around ``scaled_dot_product_gqa``): the function
  alone, as for a class that cannot be fed, with the rank of each tensor it hands to einops'
  ``rearrange`` read from the pattern (``rearranged_ranks``).
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

torch = pytest.importorskip("torch")

from test_verify_research import fix_then_verify

from adopter.verify import inputs
from adopter.verify.parallel import Groups, construct
from adopter.verify.result import PASS


def test_the_harness31_fixture_is_fixed_and_verified(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "harness31", "attention.py")
    rows = [(r["class"], r["verdict"]) for r in patches if r["rule"] == "ADP010"]
    assert sorted(rows) == [("CachedAttention", PASS), ("ChannelAttention", PASS),
                            ("PositionalAttention", PASS), ("PositionalAttention", PASS)], rows


@pytest.mark.skipif(torch.cuda.is_available(), reason="`.cuda()` works here: nothing to keep on the host")
def test_cuda_is_kept_on_the_host_and_restored():
    tensor_cuda, module_cuda = torch.Tensor.cuda, torch.nn.Module.cuda
    groups = Groups()
    try:
        built = construct(groups, lambda: torch.zeros(2).cuda())
        assert built.device.type == "cpu"
        assert isinstance(torch.nn.Linear(2, 2).cuda(), torch.nn.Linear)
        assert "`.cuda()`" in groups.describe()
    finally:
        groups.close()
    assert torch.Tensor.cuda is tensor_cuda and torch.nn.Module.cuda is module_cuda


def test_an_error_not_from_torch_cuda_is_not_repaired():
    groups = Groups()
    try:
        with pytest.raises(AssertionError):
            construct(groups, lambda: (_ for _ in ()).throw(AssertionError("Torch not compiled with CUDA enabled")))
        assert groups.describe() == ""
    finally:
        groups.close()


def _function(source: str):
    namespace: dict = {}
    exec(textwrap.dedent(source), namespace)  # noqa: S102 -- our own test source
    func = next(v for k, v in namespace.items() if k == "forward")
    inputs._parsed_def.cache_clear()
    return func


def _parsed(source: str):
    return ast.parse(textwrap.dedent(source)).body[0]


def test_an_input_asserted_given_is_required(monkeypatch):
    node = _parsed("""
        def forward(self, x, a=None, b=None, c=None, d=None):
            assert a is not None and b is not None, "both"
            if c is None:
                assert d is not None
            assert c is None or d is not None
            return x
    """)
    monkeypatch.setattr(inputs, "_function_def", lambda func: node)
    assert inputs.asserted_given(lambda: None) == {"a", "b"}


@pytest.mark.parametrize("body, held", [
    ("h = x\nh = self.norm(h)", {"x", "h"}),
    ("\"\"\"doc\"\"\"\nh = x\ng = h\ny = self.norm(g)", {"x", "h", "g"}),
    ("h = x + 1\ny = self.norm(h)", {"x"}),  # a new value, no copy
    ("if x is None:\n    pass\nh = x", {"x"}),  # past a branch: not read
])
def test_plain_copies_of_an_input(body, held):
    node = _parsed("def forward(self, x):\n" + textwrap.indent(body, "    ") + "\n    return x\n")
    assert inputs._copies_of(node, "x") == held


def test_a_group_norm_fed_through_a_copy_sets_the_channels():
    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.GroupNorm(32, 64)
            self.q = torch.nn.Conv1d(64, 64, 1)

        def forward(self, x):
            h = x
            h = self.norm(h)
            return self.q(h)

    from adopter.verify.sizes import VERIFY

    first = next(iter(inputs.input_options(Block(), {}, VERIFY, {})))
    assert first.args[0].shape[:2] == (2, 64) and first.args[0].dim() == 3


def test_postponed_builtin_annotations_are_the_types():
    def forward(self, x: torch.Tensor, offset: int, flag: bool, scale: float, other: Tensor):  # noqa: F821
        return x  # (this module's annotations are postponed: each is its text)

    params = {p.name: p.annotation for p in inputs.signature_of(forward)}
    assert params == {"self": inspect.Parameter.empty, "x": "torch.Tensor", "offset": int, "flag": bool,
                      "scale": float, "other": "Tensor"}


def test_a_function_of_a_class_needing_an_absent_package_is_verified_alone(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "harness31", "needs_package.py")
    rows = [r for r in patches if r["rule"] == "ADP010"]
    assert [r["verdict"] for r in rows] == [PASS], rows
    assert "grouped_attention() alone" in rows[0]["reason"], rows


@pytest.mark.parametrize("body, ranks", [
    ('q = rearrange(q, "b n h d -> b h n d")\nk = rearrange(k, "b (h d) -> b h d", h=2)', {"q": 4, "k": 2}),
    ('q = rearrange(q, "b ... d -> b d ...")', {}),  # an ellipsis: no rank
    ('a = rearrange(q, "b n d -> b d n")\nb = rearrange(q, "b n h d -> b h n d")', {}),  # two ranks
    ('q = q.view(2, 3)\nk = rearrange(k.float(), "b n d -> b d n")', {}),  # not the parameter as it is
])
def test_ranks_read_from_rearrange_patterns(monkeypatch, body, ranks):
    node = _parsed("def forward(q, k):\n" + textwrap.indent(body, "    ") + "\n    return q\n")
    monkeypatch.setattr(inputs, "_function_def", lambda func: node)
    import einops

    scope = {"rearrange": einops.rearrange}  # (the module the function runs in binds einops')
    exec("def forward():\n    pass\n", scope)  # noqa: S102 (our own fixture)
    assert inputs.rearranged_ranks(scope["forward"]) == ranks
