"""A required config read by key whose field names say nothing (``config["topk_factor"]``), the
fields stored on self and typed by their later uses (``facts._Collector.fields``: a condition,
arithmetic, an order), and a branch on such an attribute taken by building with the config's
field (``branches.stored_fields``, ``Builder.variants``): recbole's FEARec ``HybridAttention``.
A branch on the config read by key where it runs (``if self.cfg["scored"]:``) is a config guard
too (``branches._classify``) and types the field as a switch (``facts._Collector._field``).
Fixture ``research/stored_fields`` (two attentions of ours): fixed and verified; on main their
builds stopped at "cannot infer `config.smooth_factor`" / "`cfg.gain_value`"."""

from __future__ import annotations

import ast
import inspect
import types

import pytest

pytest.importorskip("torch")

from test_verify_research import fix_then_verify

from adopter.verify import facts
from adopter.verify.branches import _classify, stored_fields
from adopter.verify.construct import ClassFacts, NeedsFactory, _param_candidates
from adopter.verify.result import PASS
from adopter.verify.sizes import VERIFY


def test_the_blended_attention_is_built_and_verified(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "stored_fields", "attention.py")
    rows = {r["class"]: r for r in patches if r["rule"] == "ADP010"}
    assert sorted(rows) == ["BlendedAttention", "KeyedAttention"]
    assert all(r["verdict"] == PASS for r in rows.values()), rows
    # reached by building with the field set, not only by the attribute set after building
    # (``self.share`` exists only when __init__ saw the field true)
    assert "config.blend_scores=True" in rows["BlendedAttention"]["reason"], rows
    # a branch on the config read by key where it runs (``if self.cfg["scored"]:``)
    assert "config.scored=True" in rows["KeyedAttention"]["reason"], rows


@pytest.mark.parametrize("test, expected", [
    ('cfg["scored"]', [("config", "scored", True)]),
    ('self.config["dual_domain"]', [("config", "dual_domain", True)]),
    ('not config["std"]', [("config", "std", False)]),
])
def test_a_branch_on_a_config_key_is_a_config_guard(test, expected):
    assert _classify(ast.parse(test, mode="eval").body, True) == expected


@pytest.mark.parametrize("test", ['table["scored"]', "cfg[0]", 'self.table["scored"]'])
def test_a_key_of_anything_else_is_no_config_guard(test):
    assert all(kind != "config" for kind, _, _ in _classify(ast.parse(test, mode="eval").body, True))


def _bag(body: str, forward: str = "return x"):
    source = ("class A:\n"
              "    def __init__(self, config):\n"
              + "".join(f"        {line}\n" for line in body.splitlines())
              + "    def forward(self, x):\n"
              + "".join(f"        {line}\n" for line in forward.splitlines()))
    tree = ast.parse(source)
    cls = tree.body[0]
    names = facts.argument_reads({"A": cls}, "A")
    param = inspect.Parameter("config", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    info = ClassFacts(cls=object, params=[param], reads=names, classes={"A": cls})
    found = _param_candidates(info, param, types.ModuleType("m"), VERIFY)
    assert len(found) == 1
    return found[0]


def test_stored_fields_are_typed_by_their_uses():
    bag = _bag('self.factor = config["topk_factor"]\nself.mode = config["mode_on"]\n'
               'self.ratio = config.mix_ratio',
               "if self.mode:\n    x = x * self.factor\nif self.ratio > 0.5:\n    x = x + 1\nreturn x")
    assert bag["mode_on"] is False
    assert bag["topk_factor"] == 2 and bag["mix_ratio"] == 2


def test_a_field_tested_by_key_is_a_switch():
    bag = _bag('self.config = config\nself.gain = config["gain_value"]',
               'x = x * self.gain\nif self.config["scored"]:\n    x = x + 1\nreturn x')
    assert bag["scored"] is False and bag["gain_value"] == 2


@pytest.mark.parametrize("body, forward", [
    # stored, then only handed on as a positional size: nothing says what it is
    ('self.width = config["extra_q"]', "return nn.Linear(4, self.width)(x)"),
    # stored, then compared with a string: no number
    ('self.kind = config["extra_kind"]', "if self.kind > 'm':\n    x = x * 2\nreturn x"),
    # read without being stored and used directly: no stored field to type
    ('n = config["extra_count"]', "return x"),
])
def test_a_field_nothing_types_is_still_refused(body, forward):
    with pytest.raises(NeedsFactory, match="extra_"):
        _bag(body, forward)


def test_a_none_default_config_still_tries_none_first():
    # the typed bag of a required config is not the None-default's path (``_complete``): a config
    # with a default gets no bag from ``_param_candidates`` when its strict bag fails
    source = "class A:\n    def __init__(self, config=None):\n        self.f = config['some_factor']\n" \
             "    def forward(self, x):\n        return x * self.f\n"
    cls = ast.parse(source).body[0]
    names = facts.argument_reads({"A": cls}, "A")
    param = inspect.Parameter("config", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
    info = ClassFacts(cls=object, params=[param], reads=names, classes={"A": cls})
    with pytest.raises(NeedsFactory):
        _param_candidates(info, param, types.ModuleType("m"), VERIFY)


def test_stored_fields_are_an_arguments_fields_only():
    text = ("class A:\n"
            "    def __init__(self, config, other=None):\n"
            "        self.cfg = config\n"
            "        self.a = config['alpha']\n"
            "        self.b = config.beta\n"
            "        self.c = self.cfg['gamma']\n"
            "        self.d = config[0]\n"
            "        self.e = torch.float32\n"
            "        self.f = config['alpha'] + 1\n")
    assert stored_fields(text, "A") == {"a": "alpha", "b": "beta"}
    assert stored_fields(text, "B") == {}
