"""Module loading: relative imports inside a package, standalone files, a Hugging Face file."""

import sys
import textwrap
import uuid

import pytest

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.loader import ModuleLoader
from adopter.verify.result import PASS


def _package(tmp_path):
    name = f"adopter_vpkg_{uuid.uuid4().hex[:8]}"
    root = tmp_path / name
    (root / "models").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "models" / "__init__.py").write_text("")
    (root / "layers.py").write_text(textwrap.dedent("""
        from torch import nn

        EPS = 1e-6


        def make_norm(width):
            return nn.LayerNorm(width, eps=EPS)
    """))
    (root / "models" / "block.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        from ..layers import make_norm
        from . import helpers


        class Block(nn.Module):
            def __init__(self, hidden_size):
                super().__init__()
                self.dense = nn.Linear(hidden_size, hidden_size)
                self.dropout = nn.Dropout(0.1)
                self.LayerNorm = nn.LayerNorm(hidden_size, eps=helpers.EPS)
                self.extra = make_norm(hidden_size)

            def forward(self, hidden_states, input_tensor):
                hidden_states = self.dense(hidden_states)
                hidden_states = self.dropout(hidden_states)
                hidden_states = self.LayerNorm(hidden_states + input_tensor)
                return self.extra(hidden_states)
    """))
    (root / "models" / "helpers.py").write_text("EPS = 1e-5\n")
    return name, root


def test_relative_imports_in_a_temporary_package(tmp_path, all_rules, quick):
    name, root = _package(tmp_path)
    path = root / "models" / "block.py"
    results = verify_file(str(path), [r for r in all_rules if r.id == "ADP005"], Config(), benchmark=False,
                          options=quick)
    assert [(r.rule, r.class_name, r.verdict) for r in results] == [("ADP005", "Block", PASS)], results
    assert str(tmp_path) not in sys.path  # the loader puts sys.path back
    assert not [m for m in sys.modules if m.startswith(f"{name}.models.block__adopter")]


def test_loader_uses_the_package_context(tmp_path):
    name, root = _package(tmp_path)
    path = root / "models" / "block.py"
    text = path.read_text().replace("self.extra(hidden_states)", "self.extra(hidden_states) * 1")
    with ModuleLoader(str(path)) as loader:
        original = loader.original()
        patched = loader.patched(text, "ADP005")
        assert original.__name__ == f"{name}.models.block"
        assert patched.__name__.startswith(f"{name}.models.block__adopter_ADP005_")
        assert patched.__package__ == f"{name}.models"
        assert patched.make_norm is original.make_norm  # the same sibling module, imported once
        assert patched.Block is not original.Block


def test_standalone_file_loads_under_a_private_name(toy):
    with ModuleLoader(str(toy / "toy_blocks.py")) as loader:
        original = loader.original()
        patched = loader.patched((toy / "toy_blocks.py").read_text(), "x")
        assert original.__name__.startswith("_adopter_verify_toy_blocks_original")
        assert patched.__name__ != original.__name__ and patched.Mixer is not original.Mixer
    assert patched.__name__ not in sys.modules


transformers = pytest.importorskip("transformers")


def _hf(model):
    import os

    return os.path.join(os.path.dirname(transformers.__file__), "models", model, f"modeling_{model}.py")


def test_bert_from_installed_transformers(all_rules, quick):
    quick.combined = False
    chosen = [r for r in all_rules if r.id in ("ADP001", "ADP005")]
    results = verify_file(_hf("bert"), chosen, Config(), benchmark=False, options=quick)
    got = {(r.rule, r.class_name): r for r in results}
    assert {("ADP001", "BertAttention"), ("ADP005", "BertSelfOutput"), ("ADP005", "BertOutput")} <= set(got)
    for result in results:
        assert result.verdict == PASS, result
    assert "BertConfig(" in got[("ADP001", "BertAttention")].details["built"]
    assert "scaled_dot_product_attention" in got[("ADP001", "BertAttention")].details["new_torch_calls"]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["bert", "roberta", "gpt2", "gpt_neo", "distilbert", "t5", "albert",
                                   "groupvit", "resnet"])
def test_in_depth_set(model, all_rules, quick):
    results = verify_file(_hf(model), all_rules, Config(), benchmark=False, options=quick)
    assert results
    assert not [r for r in results if r.verdict == "fail"], results
