"""The pieces verify uses to build research code: shrinking, call sites, source facts, branches,
missing-package stubs.  Each against source of our own, nothing mocked."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import sys
import textwrap
import uuid

import pytest

from adopter.verify import branches, facts
from adopter.verify.callsites import UNKNOWN, find_call_sites
from adopter.verify.recipes import Make, Ref
from adopter.verify.shrink import kind_of, shrink
from adopter.verify.sizes import VERIFY
from adopter.verify.stubs import ImportStubs, MissingDependency


# ----------------------------------------------------------------------------- shrink


def test_shrink_keeps_the_constraints_between_sizes():
    out = shrink({"dim": 1024, "heads": 16, "dim_head": 64, "mlp_dim": 2048, "depth": 12, "image_size": 224,
                  "patch_size": 16, "num_classes": 1000, "channels": 3, "dropout": 0.0}, VERIFY)
    assert out["dim"] == VERIFY.hidden and out["heads"] == VERIFY.heads
    assert out["dim"] % out["heads"] == 0 and out["dim_head"] == out["dim"] // out["heads"]
    assert out["depth"] == VERIFY.layers and out["mlp_dim"] == VERIFY.ffn
    assert out["image_size"] % out["patch_size"] == 0 and out["image_size"] == VERIFY.image
    assert out["channels"] == 3  # already small: kept
    assert out["dropout"] == 0.1  # so the eval check notices a kernel that drops out in eval


def test_shrink_adjusts_heads_that_do_not_divide_and_kv_heads():
    out = shrink({"n_embd": 30, "n_head": 4, "n_kv_head": 3}, VERIFY)
    assert out["n_embd"] % out["n_head"] == 0 and out["n_head"] % out["n_kv_head"] == 0


def test_shrink_stage_lists_keep_their_ratios():
    out = shrink({"dims": [64, 128, 320, 512], "depths": [3, 4, 6, 3], "num_blocks": [2, 2]}, VERIFY)
    dims = out["dims"]
    assert max(dims) <= 2 * VERIFY.hidden and [d * (512 // dims[-1]) for d in dims] == [64, 128, 320, 512]
    assert out["depths"] == [1, 1, 1, 1] and out["num_blocks"] == [1, 1]


def test_kind_of_names():
    assert kind_of("n_embd") == "hidden" and kind_of("num_attention_heads") == "heads"
    assert kind_of("n_audio_layer") == "layers" and kind_of("n_text_ctx") == "positions"
    assert kind_of("in_planes") == "channels" and kind_of("kernel_size") is None


# ----------------------------------------------------------------------------- call sites


def _write(folder, files: dict[str, str]):
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_call_sites_in_factories_main_blocks_and_other_files(tmp_path):
    _write(tmp_path, {
        "pyproject.toml": "[project]\nname = 'x'\n",
        "net.py": """
            from torch import nn

            class Block(nn.Module):
                expansion = 1

            class Net(nn.Module):
                def __init__(self, block, counts, num_classes=10, act=None):
                    super().__init__()

            def net_small(num_classes=7):
                return Net(Block, [2, 2], num_classes=num_classes, act=nn.ReLU)

            if __name__ == "__main__":
                width = 3
                Net(Block, [width] * 2)
            """,
        "train.py": """
            import argparse
            from net import Net, Block

            args = argparse.Namespace(classes=5)
            model = Net(Block, counts=[1, 1, 1], num_classes=args.classes)
            """,
    })
    sites = find_call_sites(str(tmp_path / "net.py"), "Net", None)
    found = {(tuple(map(repr, s.args)), tuple(sorted((k, repr(v)) for k, v in s.kwargs.items()))) for s in sites}
    assert (("Block", "[2, 2]"), (("act", "nn.ReLU"), ("num_classes", "7"))) in found  # refs of the module
    assert (("Block", "[3, 3]"), ()) in found
    train = [s for s in sites if s.where.startswith(str(tmp_path / "train.py"))]
    assert train and train[0].args == [Ref("Block")] and train[0].kwargs["counts"] == [1, 1, 1]
    assert train[0].kwargs["num_classes"] is UNKNOWN  # argparse: left to the default


def test_call_site_config_objects_become_makes(tmp_path):
    _write(tmp_path, {"model.py": """
        from dataclasses import dataclass
        from torch import nn

        @dataclass
        class Config:
            dim: int = 512

        class Model(nn.Module):
            def __init__(self, config):
                super().__init__()

        def build(**overrides):
            model_args = dict(dim=256)
            return Model(Config(**model_args))
        """})
    (site,) = find_call_sites(str(tmp_path / "model.py"), "Model", None)
    (value,) = site.args
    assert isinstance(value, Make) and value.func == Ref("Config") and value.kwargs == {"dim": 256}


# ----------------------------------------------------------------------------- facts


def test_config_reads_are_followed_into_the_classes_it_is_handed_to():
    tree = ast.parse(textwrap.dedent("""
        from torch import nn

        class Inner(nn.Module):
            def __init__(self, cfg):
                super().__init__()
                self.w = nn.Linear(cfg.model.dim, cfg.get("out", 4))

        class Outer(nn.Module):
            def __init__(self, config, block, counts):
                super().__init__()
                self.inner = Inner(config)
                self.drop = config.dropout
                self.layers = [block(1, 2, 3) for _ in range(counts[3])]
                self.expansion = block.expansion
        """))
    reads = facts.argument_reads(facts.class_nodes(tree), "Outer")
    config = reads["config"]
    assert set(config.attrs) == {"model", "dropout", "out"} and set(config.attrs["model"].attrs) == {"dim"}
    assert facts.is_config_like("config", config)
    assert reads["block"].called == 3 and "expansion" in reads["block"].attrs
    assert not facts.is_config_like("block", reads["block"])
    assert reads["counts"].max_index == 3


def test_a_config_field_tested_with_hasattr_is_left_out_when_no_value_can_be_guessed():
    # minGPT's causal mask: `if hasattr(config, "n_unmasked"): mask[:config.n_unmasked, ...] = 1`
    from adopter.verify.construct import NeedsFactory, _bag_for

    tree = ast.parse(textwrap.dedent("""
        import torch
        from torch import nn

        class CausalSelfAttention(nn.Module):
            def __init__(self, config):
                super().__init__()
                self.key = nn.Linear(config.n_embd, config.n_embd)
                mask = torch.tril(torch.ones(config.block_size, config.block_size))
                if hasattr(config, "n_unmasked"):
                    mask[:config.n_unmasked, :config.n_unmasked] = 1
                self.register_buffer("mask", mask)
        """))
    config = facts.argument_reads(facts.class_nodes(tree), "CausalSelfAttention")["config"]
    assert config.attrs["n_unmasked"].optional and not config.attrs["n_embd"].optional
    bag = _bag_for(config, VERIFY)
    assert "n_unmasked" not in bag and not hasattr(bag, "n_unmasked")
    assert {"n_embd", "block_size"} <= set(bag)
    config.attrs["n_unmasked"].optional = False  # read unconditionally: no value to guess
    with pytest.raises(NeedsFactory, match="n_unmasked"):
        _bag_for(config, VERIFY)


# ----------------------------------------------------------------------------- branches


def test_guards_and_the_constructor_arguments_behind_them():
    text = textwrap.dedent("""
        class Block:
            def __init__(self, channels, stride=1):
                self.stride = stride
                self.down = None
                if self.stride > 1:
                    self.down = make(channels)

            def forward(self, x, mask=None):
                if self.down is not None:
                    x = self.down(x)
                if mask is not None:
                    x = x + mask
                else:
                    x = x * 2
                return x
        """)
    lines = text.splitlines()
    down_line = next(i for i, line in enumerate(lines, 1) if "x = self.down(x)" in line)
    else_line = next(i for i, line in enumerate(lines, 1) if "x = x * 2" in line)
    (guard,) = branches.guards(text, {down_line})
    assert (guard.kind, guard.name, guard.want, guard.branch) == ("attr_set", "down", "given", "body")
    assert branches.init_conditions(text, "Block", "down", True) == [[("stride", 2)]]
    (other,) = branches.guards(text, {else_line})
    assert (other.kind, other.name, other.want, other.branch) == ("param", "mask", "absent", "else")
    ran = {guard.line, other.line, other.body_start}  # both tests ran; neither edited side did
    assert branches.unexercised([guard], ran) == guard


# ----------------------------------------------------------------------------- stubs


def test_stubs_raise_on_use_respect_guards_and_leave_nothing_behind(tmp_path):
    name = f"adopter_stub_demo_{uuid.uuid4().hex[:8]}"
    missing = f"not_installed_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(f"""
        import {missing} as pkg
        from {missing}.sub import Thing
        try:
            import {missing}_optional
            HAVE = True
        except ImportError:
            HAVE = False

        DEFAULT = pkg.MODE

        class Child(Thing):
            pass

        def use():
            return pkg.run(1)
        """))
    sys.path.insert(0, str(tmp_path))
    try:
        with ImportStubs() as stubs:
            with pytest.raises(ModuleNotFoundError) as info:
                importlib.import_module(name)
            assert stubs.can_stub(info.value) == missing
            stubs.add(missing)
            module = importlib.import_module(name)
            assert module.HAVE is False  # the guarded import took the file's own fallback
            assert not isinstance(3, module.DEFAULT)
            with pytest.raises(MissingDependency, match=f"needs {missing}"):
                module.use()
            with pytest.raises(MissingDependency):
                module.Child()
        assert not [m for m in sys.modules if m.startswith((missing, name))]
    finally:
        sys.path.remove(str(tmp_path))


def test_an_installed_package_is_never_stubbed():
    stubs = ImportStubs()
    error = ModuleNotFoundError("No module named 'torch.not_a_submodule'", name="torch.not_a_submodule")
    assert stubs.can_stub(error) is None


# ----------------------------------------------------------------------------- inputs


def test_sequence_bound_by_position_tables_not_by_other_embeddings():
    import torch
    from torch import nn

    from adopter.verify.inputs import _max_seq, mask_values

    class Embeddings(nn.Module):
        def __init__(self):
            super().__init__()
            self.word_embeddings = nn.Embedding(99, 8)
            self.token_type_embeddings = nn.Embedding(2, 8)  # two segment types: not a length
            self.position_embeddings = nn.Embedding(6, 8)

    assert _max_seq(Embeddings(), {}, VERIFY) == 6
    for kind in ("binary", "bool", "additive4", "additive_square"):
        mask = mask_values(kind, 2, 2)
        visible = (mask != 0) if kind in ("binary", "bool") else (mask == 0)
        assert visible[-1].any(), kind  # never a fully masked sequence
    assert torch.equal(mask_values("binary", 2, 8)[-1], torch.tensor([1, 1, 1, 1, 1, 1, 0, 0]))


def test_input_rank_from_the_forward_code():
    from torch import nn

    from adopter.verify.inputs import input_rank

    class Unpacks(nn.Module):
        def forward(self, x):
            b, c, h, w = x.shape
            return x

    class StarUnpacks(nn.Module):
        heads = 2

        def forward(self, x):
            shape = x.shape
            b, n, _, y, h = *shape, self.heads
            return x

    class Rearranges(nn.Module):
        def forward(self, x):
            from einops import rearrange
            t = rearrange(x, "b p n (h d) -> b p h n d", h=2)
            return rearrange(t, "b p h n d -> b p n (h d)")

    class SaysNothing(nn.Module):
        def forward(self, x):
            return x * 2

    assert input_rank(Unpacks().forward) == (4, True)
    assert input_rank(StarUnpacks().forward) == (4, True)
    assert input_rank(Rearranges().forward) == (4, False)  # the lowest rank a pattern takes: likely
    assert input_rank(SaysNothing().forward) == (None, False)


def test_shape_demands_from_the_forward_code():
    """Asserts, ``if ...: raise`` and einops patterns on the first input, read against the built
    module's own sizes; a demand on a name that is no axis, or a size the module does not hold,
    is no demand; a candidate is resized to meet them (a multiple at or above its side)."""
    import torch
    from torch import nn

    from adopter.verify.inputs import constrained, shape_constraints

    class Halo(nn.Module):
        dim, block_size, halo = 16, 4, 1

        def forward(self, x):
            b, c, h, w, block = *x.shape, self.block_size
            assert h % block == 0 and w % block == 0
            assert c == self.dim, "channels"
            return x

    class Raises(nn.Module):
        resolution = (3, 5)

        def forward(self, x):
            B, N, C = x.shape
            if N != self.resolution[0] * self.resolution[1] or C % 8:
                raise ValueError("tokens")
            return x

    class Patterned(nn.Module):
        heads, patch = 4, 2

        def forward(self, x):
            from einops import rearrange
            p = self.patch
            return rearrange(x, "b c (h p1) (w p2) -> b (h w) (p1 p2 c)", p1=p, p2=p)

    class Unknown(nn.Module):
        def forward(self, x, n):
            b, c = x.shape
            assert c == self.width and n % 2 == 0  # no such attribute; not an axis
            return x

    assert shape_constraints(Halo().forward, Halo()) == (4, {1: ("eq", 16), 2: ("div", 4), 3: ("div", 4)})
    # `C % 8` (true when not divisible) is no equality the code goes on with; N == 3 * 5 is
    assert shape_constraints(Raises().forward, Raises()) == (3, {1: ("eq", 15)})
    assert shape_constraints(Patterned().forward, Patterned()) == (4, {2: ("div", 2), 3: ("div", 2)})
    assert shape_constraints(Unknown().forward, Unknown()) is None
    resized = constrained(torch.zeros(2, 4, 6, 8), {1: ("eq", 16), 2: ("div", 4), 3: ("div", 4)})
    assert resized.shape == (2, 16, 8, 8)
    assert constrained(torch.zeros(2, 16, 8, 8), {1: ("eq", 16), 2: ("div", 4)}) is None  # already met


def test_channel_counts_are_tried_as_a_multiple_of_32_second_in_a_file_with_group_norm(tmp_path):
    # VQ-GAN / latent-diffusion blocks normalise with GroupNorm(32, in_channels): the small
    # verify width (8) cannot build them, a multiple of 32 can (only offered where the file
    # builds a GroupNorm: elsewhere the first guess, or the block as its model builds it)
    import types

    from adopter.verify.construct import ClassFacts, _param_candidates

    assert VERIFY.channels % 32  # (else the first guess would do)
    param = inspect.Parameter("in_channels", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    info = ClassFacts(cls=object, params=[param], reads={}, classes={})
    candidates = {}
    for text in ("self.norm = nn.GroupNorm(32, c)", "self.norm = nn.LayerNorm(c)"):
        path = tmp_path / f"m{len(candidates)}.py"
        path.write_text(text + "\n")
        module = types.ModuleType("m")
        module.__file__ = str(path)
        candidates[text.split("(")[0]] = _param_candidates(info, param, module, VERIFY)
    first, second = candidates["self.norm = nn.GroupNorm"]
    assert first == VERIFY.channels and second % 32 == 0 and second % first == 0
    assert candidates["self.norm = nn.LayerNorm"] == [VERIFY.channels]


def test_outputs_that_hold_no_finite_number_prove_nothing():
    """Two modules whose outputs are all NaN compare equal (NaN matches NaN), which proves
    nothing: the eval outcome says so; one finite entry is enough to count."""
    import torch
    from torch import nn

    from adopter.verify.build import Call, Pair
    from adopter.verify.compare import Tolerance, check_eval

    class Scaled(nn.Module):
        def __init__(self, value):
            super().__init__()
            self.weight = nn.Parameter(torch.full((4, 4), value))

        def forward(self, x):
            return x @ self.weight

    call = Call((torch.randn(2, 4),), {})
    cpu = torch.device("cpu")
    nan = check_eval(Pair(Scaled(float("nan")), Scaled(float("nan")), call), cpu, Tolerance())
    assert nan.ok and nan.not_finite
    finite = check_eval(Pair(Scaled(0.5), Scaled(0.5), call), cpu, Tolerance())
    assert finite.ok and not finite.not_finite
    partly = Scaled(0.5)
    with torch.no_grad():
        partly.weight[:, 0] = float("nan")
    mixed = check_eval(Pair(partly, partly, call), cpu, Tolerance())
    assert mixed.ok and not mixed.not_finite


def test_only_a_setter_that_sets_up_process_groups_is_called(tmp_path):
    """An accessor fails on a None global: the function assigning that global is called only when
    it calls into torch.distributed (a group setter), never a setter of some other global; what
    it set is put back on close."""
    import torch.distributed as dist

    from adopter.verify.parallel import Groups

    path = tmp_path / f"state_{uuid.uuid4().hex}.py"
    path.write_text(textwrap.dedent('''
        import torch.distributed as dist

        _BACKEND = None
        _GROUP = None
        calls = []


        def choose_backend(name: int):
            global _BACKEND
            calls.append(name)
            _BACKEND = name


        def backend():
            assert _BACKEND is not None, "backend not chosen"
            return _BACKEND


        def make_group(size: int):
            global _GROUP
            _GROUP = dist.new_group(list(range(size)))


        def group():
            assert _GROUP is not None, "group not initialised"
            return _GROUP
    '''))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    groups = Groups()
    try:
        with pytest.raises(AssertionError) as info:
            module.backend()
        assert not groups.repair(info.value) and module.calls == [] and module._BACKEND is None
        with pytest.raises(AssertionError) as info:
            module.group()
        assert groups.repair(info.value)  # the default group first (new_group needs it), then the setter
        assert module.group() is not None and dist.is_initialized()
    finally:
        groups.close()
    assert module._GROUP is None and not dist.is_initialized()
