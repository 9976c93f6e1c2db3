"""A subclass whose constructor hands its arguments whole to a base class of another file, and
whose forward no guessed input runs: verified by a direct call of the method that holds the edit.

xuance's ``TarMAC(IC3NetComm)`` only passes ``input_shape``, ``hidden_sizes`` and the rest to
``super().__init__``; the base (two files up) indexes ``input_shape[0]``, reads
``hidden_sizes["recurrent_hidden_size"]`` (and stores ``hidden_sizes["fc_hidden_sizes"]`` for
callers, which verify still refuses to guess: a field nothing types).  Its forward takes dicts of per-agent tensors, and the attention lies in
``attention_block(q, k, v)``, two einsums over [batch, agents, steps, width].  Verify could not
infer ``input_shape`` (the class's own file says nothing of it), and once built it stopped at forward's "no inputs it accepts" without trying the helper.  Now
``construct.inherit_reads`` follows ``super().__init__`` into the base's source, a forward no input runs leaves the helper's direct call to
check the patched lines, and that call reads the helper's later inputs' einsum ranks.
By what the code does, not by any name.
"""

import ast
import importlib
import sys
import textwrap
import uuid

import pytest
from stand_in import stand_in_fix as _fix

from adopter.config import Config
from adopter.verify import verify_file
from adopter.verify.construct import inherit_reads
from adopter.verify.facts import Reads, argument_reads, class_nodes
from adopter.verify.result import FAIL, PASS

BASE = '''
from torch import nn


class Relay(nn.Module):
    def __init__(self, obs_shape, sizes, n_agents=1):
        super().__init__()
        self.width = sizes["message_width"]
        self.n_agents = n_agents
        self.encode = nn.Sequential(nn.Linear(obs_shape[0], sizes["hidden_size"]),
                                    nn.Linear(sizes["hidden_size"], self.width))
'''

ATTENTION = '''
import torch
from torch import nn

from PKG.base import Relay


class Broadcast(Relay):
    def __init__(self, obs_shape, sizes, n_agents=1):
        super().__init__(obs_shape, sizes, n_agents)
        self.q = nn.Linear(self.width, self.width)
        self.k = nn.Linear(self.width, self.width)
        self.v = nn.Linear(self.width, self.width)
        self.scale = self.width ** 0.5

    def mix(self, q, k, v):
        scores = torch.einsum("bikd,bjkd->bikj", q, k) / self.scale
        weights = torch.softmax(scores, dim=-1)
        return torch.einsum("bikj,bjkd->bikd", weights, v)

    def forward(self, obs, inbox: dict):
        msgs = torch.stack(list(inbox.values()), dim=1) + self.encode(obs).unsqueeze(1)
        return self.mix(self.q(msgs), self.k(msgs), self.v(msgs))
'''


def _project(tmp_path):
    name = f"adopter_inherit_{uuid.uuid4().hex[:8]}"
    root = tmp_path / "proj" / name
    root.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "base.py").write_text(textwrap.dedent(BASE))
    path = root / "broadcast.py"
    path.write_text(textwrap.dedent(ATTENTION).replace("PKG", name))
    return path


SITE = ('        scores = torch.einsum("bikd,bjkd->bikj", q, k) / self.scale\n'
        "        weights = torch.softmax(scores, dim=-1)\n"
        '        return torch.einsum("bikj,bjkd->bikd", weights, v)\n')
RIGHT = ("        return torch.nn.functional.scaled_dot_product_attention(\n"
         "            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=1 / self.scale).transpose(1, 2)\n")
# attention over the steps axis instead of the agents axis
WRONG_AXIS = ("        return torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1 / self.scale)\n")
# the default scale 1/sqrt(width) is the original's too: a doubled one
WRONG_SCALE = ("        return torch.nn.functional.scaled_dot_product_attention(\n"
               "            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=2 / self.scale).transpose(1, 2)\n")


def _verify(path, all_rules, quick, edit):
    rules = [r for r in all_rules if r.id == "ADP010"]
    return [r for r in verify_file(str(path), rules, Config(), benchmark=False, options=quick, fix=_fix(*edit))
            if not r.combined]


def test_the_right_patch_passes_through_the_helper(tmp_path, all_rules, quick):
    path = _project(tmp_path)
    results = _verify(path, all_rules, quick, (SITE, RIGHT))
    assert [r.verdict for r in results] == [PASS], results
    assert "mix()" in results[0].reason and "gradients match" in results[0].reason


@pytest.mark.parametrize("wrong", [WRONG_AXIS, WRONG_SCALE], ids=["wrong-axis", "wrong-scale"])
def test_wrong_patches_fail(tmp_path, all_rules, quick, wrong):
    path = _project(tmp_path)
    results = _verify(path, all_rules, quick, (SITE, wrong))
    assert [r.verdict for r in results] == [FAIL], results


def _classes(source: str):
    return class_nodes(ast.parse(textwrap.dedent(source)))


def test_inherit_reads_merges_the_base_reads(tmp_path, monkeypatch):
    path = _project(tmp_path)
    monkeypatch.syspath_prepend(str(path.parent.parent))
    name = path.parent.name
    try:
        module = importlib.import_module(f"{name}.broadcast")
        classes = _classes(path.read_text())
        reads = argument_reads(classes, "Broadcast")
        assert reads["obs_shape"].max_index < 0  # the subclass's own code only hands it on
        inherit_reads(module.Broadcast, classes, reads)
        assert reads["obs_shape"].max_index == 0
        assert set(reads["sizes"].attrs) == {"message_width", "hidden_size"}
        # a look-alike: a class that hands the base constants, not its arguments, gets nothing
        own = _classes("class Own(Relay):\n    def __init__(self, obs_shape, sizes):\n"
                       "        super().__init__((4,), {'message_width': 8, 'hidden_size': 8})\n")
        own_reads = {"obs_shape": Reads(), "sizes": Reads()}
        inherit_reads(type("Own", (module.Relay,), {}), own, own_reads)
        assert own_reads == {"obs_shape": Reads(), "sizes": Reads()}
    finally:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]  # left behind for no other test


def test_inherit_reads_follows_keywords_and_skips_positions_after_star_args(tmp_path, monkeypatch):
    """A subclass handing its arguments by keyword (tardis-em's ``SelfAttention2D`` calls
    ``super().__init__(embed_dim, num_heads, dropout=dropout, self_attention=True)``): the
    keyword names the base's parameter.  Verify used to raise a TypeError here (the keyword's
    name was used to slice the positional arguments), which ended the whole file's verify."""
    path = _project(tmp_path)
    monkeypatch.syspath_prepend(str(path.parent.parent))
    name = path.parent.name
    try:
        module = importlib.import_module(f"{name}.broadcast")
        keyed = _classes("class Keyed(Relay):\n    def __init__(self, obs_shape, sizes):\n"
                         "        super().__init__(obs_shape, sizes=sizes, n_agents=2)\n")
        reads = argument_reads(keyed, "Keyed")
        inherit_reads(type("Keyed", (module.Relay,), {}), keyed, reads)
        assert reads["obs_shape"].max_index == 0
        assert set(reads["sizes"].attrs) == {"message_width", "hidden_size"}
        # after a ``*args`` the positions are unknown: only the keyword is followed
        starred = _classes("class Starred(Relay):\n    def __init__(self, obs_shape, sizes, *rest):\n"
                           "        super().__init__(*rest, obs_shape, sizes=sizes)\n")
        reads = argument_reads(starred, "Starred")
        inherit_reads(type("Starred", (module.Relay,), {}), starred, reads)
        assert reads["obs_shape"].max_index < 0
        assert set(reads["sizes"].attrs) == {"message_width", "hidden_size"}
    finally:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
