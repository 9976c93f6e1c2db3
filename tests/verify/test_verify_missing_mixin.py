"""A config class whose first base is a mixin the environment lacks, beside an installed base.

rfdetr's windowed DINOv2 file (research attention, issue 12) declares its config as
``class Config(BackboneConfigMixin, PretrainedConfig)`` with ``BackboneConfigMixin`` imported from
a transformers newer than the one verify runs with.  The missing name becomes a stand-in base
whose ``__init__`` raised, so ``super().__init__(**kwargs)`` in the config's own ``__init__``
failed, no config built, and the attention using it was skipped ("none of ... builds with default
arguments").  Now a stand-in base followed by an installed base passes the construction on to it
(as a mixin without an ``__init__`` of its own would); what the mixin would provide still raises
where it is read, and a stand-in alone (or before only other stand-ins) still cannot be made.
"""

import importlib
import sys
import textwrap
import uuid

import pytest
from stand_in import adp010_verdicts

from adopter.verify.result import FAIL, PASS
from adopter.verify.stubs import ImportStubs, MissingDependency


def _source(missing: str) -> str:
    return textwrap.dedent(f'''\
        import torch
        import torch.nn.functional as F
        from torch import nn
        from transformers.configuration_utils import PretrainedConfig

        from {missing} import LayoutMixin


        class GridAttentionConfig(LayoutMixin, PretrainedConfig):
            def __init__(self, hidden_size=768, num_attention_heads=12, attention_probs_dropout_prob=0.0,
                         **kwargs):
                super().__init__(**kwargs)
                self.hidden_size = hidden_size
                self.num_attention_heads = num_attention_heads
                self.attention_probs_dropout_prob = attention_probs_dropout_prob


        class GridSelfAttention(nn.Module):
            def __init__(self, config: GridAttentionConfig):
                super().__init__()
                self.heads = config.num_attention_heads
                self.head_size = config.hidden_size // config.num_attention_heads
                self.query = nn.Linear(config.hidden_size, config.hidden_size)
                self.key = nn.Linear(config.hidden_size, config.hidden_size)
                self.value = nn.Linear(config.hidden_size, config.hidden_size)
                self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

            def split(self, x):
                b, n, _ = x.shape
                return x.view(b, n, self.heads, self.head_size).permute(0, 2, 1, 3)

            def forward(self, hidden_states):
                q = self.split(self.query(hidden_states))
                k = self.split(self.key(hidden_states))
                v = self.split(self.value(hidden_states))
                scores = torch.matmul(q, k.transpose(-1, -2)) / self.head_size ** 0.5
                probs = nn.functional.softmax(scores, dim=-1)
                probs = self.dropout(probs)
                context = torch.matmul(probs, v).permute(0, 2, 1, 3)
                return context.reshape(context.shape[0], context.shape[1], -1)
        ''')


SITE = ("        scores = torch.matmul(q, k.transpose(-1, -2)) / self.head_size ** 0.5\n"
        "        probs = nn.functional.softmax(scores, dim=-1)\n"
        "        probs = self.dropout(probs)\n"
        "        context = torch.matmul(probs, v).permute(0, 2, 1, 3)\n")
RIGHT = ("        context = F.scaled_dot_product_attention(\n"
         "            q, k, v, dropout_p=self.dropout.p if self.training else 0.0).permute(0, 2, 1, 3)\n")
UNSCALED = ("        context = F.scaled_dot_product_attention(\n"
            "            q, k, v, dropout_p=self.dropout.p if self.training else 0.0, scale=1.0"
            ").permute(0, 2, 1, 3)\n")


@pytest.mark.parametrize("missing", ["package", "name"])
def test_the_attention_of_a_config_with_a_missing_mixin_verifies(tmp_path, all_rules, quick, missing):
    # a package not installed (stubbed on import), or a name an installed package lacks (the
    # loader leaves the import out and injects a placeholder): both become stand-in bases
    where = f"not_installed_{uuid.uuid4().hex[:8]}" if missing == "package" else "torch.nn"
    source = _source(where)
    if missing == "name":
        source = source.replace("LayoutMixin", f"LayoutMixin{uuid.uuid4().hex[:6]}")
    results = adp010_verdicts(tmp_path / f"grid_attention_{missing}.py", source, (SITE, RIGHT), all_rules, quick)
    assert [r.verdict for r in results] == [PASS], results


def test_a_wrong_patch_of_that_attention_fails(tmp_path, all_rules, quick):
    source = _source(f"not_installed_{uuid.uuid4().hex[:8]}")
    results = adp010_verdicts(tmp_path / "grid_attention_wrong.py", source, (SITE, UNSCALED), all_rules, quick)
    assert [r.verdict for r in results] == [FAIL], results


def test_a_stand_in_base_passes_construction_on_only_to_an_installed_base(tmp_path):
    torch = pytest.importorskip("torch")
    name = f"adopter_mixin_demo_{uuid.uuid4().hex[:8]}"
    missing = f"not_installed_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(f"""
        from torch import nn

        from {missing} import Mixin, Other


        class Base:
            def __init__(self, **kwargs):
                self.given = kwargs


        class WithBase(Mixin, Base):
            def __init__(self, width=4, **kwargs):
                super().__init__(**kwargs)
                self.width = width


        class Layered(Mixin, nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(2, 2)

            def forward(self, x):
                return self.lin(x)


        class Alone(Mixin):
            def __init__(self):
                super().__init__()


        class TwoMissing(Mixin, Other):
            def __init__(self):
                super().__init__()
        """))
    sys.path.insert(0, str(tmp_path))
    try:
        with ImportStubs() as stubs:
            stubs.add(missing)
            module = importlib.import_module(name)
            made = module.WithBase(width=8, extra=1)
            assert made.width == 8 and made.given == {"extra": 1}
            with pytest.raises(MissingDependency):  # what the mixin would have provided
                made.mixin_method()
            # an nn.Module after the mixin: the layers it registered are found through its lookup
            layered = module.Layered()
            assert layered.lin.out_features == 2 and layered(torch.ones(1, 2)).shape == (1, 2)
            with pytest.raises(MissingDependency):
                layered.mixin_method()
            with pytest.raises(MissingDependency):
                module.Alone()
            with pytest.raises(MissingDependency):
                module.TwoMissing()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)
