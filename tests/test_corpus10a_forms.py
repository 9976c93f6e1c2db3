"""Forms found missing while checking the blind batch corpus10a (vision research code and
torchvision-style CNNs): each test states the semantic fact the engine now reads, and a
near-miss it must still leave alone.  The fixtures are ours, written in those projects' styles."""

from __future__ import annotations


import pytest

from adopter.engine import analyze
from adopter.ruleset import load_rules, select_rules
from adopter.synth import fix_text

RULES = select_rules(load_rules(), ["ADP007", "ADP008"])


def _line(code: str, needle: str) -> int:
    return next(n for n, text in enumerate(code.splitlines(), 1) if needle in text)


# PointNet++ / GIN style: empty nn.ModuleLists bound in __init__, filled by append (or extend,
# or +=) in a loop, and run pairwise in forward (zipped, or indexed by the same counter).
APPENDED = """\
import torch
import torch.nn.functional as F
from torch import nn


class SetAbstraction(nn.Module):
    def __init__(self, cin, mlp):
        super().__init__()
        self.mlp_convs = nn.ModuleList()
        self.mlp_bns = nn.ModuleList()
        last = cin
        for out in mlp:
            self.mlp_convs.append(nn.Conv2d(last, out, 1))
            self.mlp_bns.append(nn.BatchNorm2d(out))
            last = out

    def forward(self, x):
        for i, conv in enumerate(self.mlp_convs):
            bn = self.mlp_bns[i]
            x = F.relu(bn(conv(x)))  # pointnet-pair
        return x


class GinMlp(nn.Module):
    def __init__(self, dims=(6, 12, 12)):
        super().__init__()
        self.lins = nn.ModuleList()
        self.bns = nn.ModuleList([])
        for a, b in zip(dims[:-1], dims[1:]):
            self.lins.extend([nn.Linear(a, b)])
            self.bns += [nn.BatchNorm1d(b)]

    def forward(self, x):
        for lin, bn in zip(self.lins, self.bns):
            x = lin(x)
            x = bn(x)  # gin-pair
            x = F.relu(x)
        return x


class PreNorm(nn.Module):
    \"\"\"The norms run before the convolutions: no Conv -> BatchNorm pair.\"\"\"

    def __init__(self, c, n=2):
        super().__init__()
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        for _ in range(n):
            self.convs.append(nn.Conv2d(c, c, 3, padding=1))
            self.bns.append(nn.BatchNorm2d(c))

    def forward(self, x):
        for conv, bn in zip(self.convs, self.bns):
            x = conv(F.relu(bn(x)))  # pre-norm
        return x


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.sa = SetAbstraction(3, (8, 8))
        self.pre = PreNorm(8)
        self.mlp = GinMlp((8, 12, 12))

    def forward(self, x):
        x = self.pre(self.sa(x))
        return self.mlp(x.mean(dim=(2, 3)))
"""


def test_layers_appended_to_a_module_list_are_its_members():
    findings = sorted(analyze(APPENDED, "net.py", RULES).findings, key=lambda f: f.rule)
    assert [f.rule for f in findings] == ["ADP007", "ADP008"]
    for finding, needle in zip(findings, ("# pointnet-pair", "# gin-pair")):
        assert finding.line <= _line(APPENDED, needle) <= finding.end_line


def test_appends_to_a_list_that_is_not_a_module_list_bind_nothing():
    """``self.convs`` bound to a plain Python list (its layers are not even registered) or to an
    nn.Sequential (a positional container, read elsewhere) is not given members by append."""
    plain = APPENDED.replace("self.mlp_convs = nn.ModuleList()", "self.mlp_convs = []")
    assert [f.line for f in analyze(plain, "net.py", RULES).findings if f.rule == "ADP007"] == []


def test_the_fix_of_appended_module_lists_computes_what_the_original_does(module_from_file):
    torch = pytest.importorskip("torch")
    result = fix_text(APPENDED, "net.py", RULES)
    assert result.error is None and len(result.applied) == 2
    original = module_from_file(APPENDED, "appended_original").Net().double()
    fixed = module_from_file(result.text, "appended_fixed").Net().double()
    torch.manual_seed(0)
    for module in original.modules():  # running statistics that are not the identity
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-1, 1)
    fixed.load_state_dict(original.state_dict(), strict=True)
    x = torch.randn(4, 3, 5, 5, dtype=torch.float64)
    original.eval()
    fixed.eval()
    with torch.no_grad():
        want, got = original(x), fixed(x)
    # float64, reductions of at most 12 products per output: folding reorders a few roundings
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    original.train()
    fixed.train()
    want, got = original(x), fixed(x)  # training: batch statistics, the two calls as written
    torch.testing.assert_close(got, want, rtol=0, atol=0)


# An empty nn.Sequential bound to an attribute, then filled by add_module / append (DenseNet-style
# stems and feature extractors written without an OrderedDict).
ADDED = """\
import torch
from torch import nn


class Features(nn.Module):
    def __init__(self, c=4, growth=6):
        super().__init__()
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(3, c, 3, padding=1, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(c))  # stem-pair
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.append(nn.Conv2d(c, growth, 1))
        self.features.append(nn.BatchNorm2d(growth))  # appended-pair
        self.transition = nn.Sequential()
        self.transition.add_module("norm", nn.BatchNorm2d(growth))  # pre-activation
        self.transition.add_module("relu", nn.ReLU(inplace=True))
        self.transition.add_module("conv", nn.Conv2d(growth, growth, 1, bias=False))

    def forward(self, x):
        return self.transition(self.features(x))
"""


def test_members_added_to_an_empty_sequential_attribute_run_in_the_order_they_are_added():
    findings = analyze(ADDED, "net.py", RULES).findings
    assert [f.rule for f in findings] == ["ADP007", "ADP007"]
    for needle in ("# stem-pair", "# appended-pair"):
        assert any(f.line <= _line(ADDED, needle) <= f.end_line for f in findings), needle
    # the transition's norm runs before its conv: nothing of it is covered
    assert not any(f.line <= _line(ADDED, "# pre-activation") <= f.end_line for f in findings)


def test_the_fix_of_an_added_to_sequential_computes_what_the_original_does(module_from_file):
    torch = pytest.importorskip("torch")
    result = fix_text(ADDED, "net.py", RULES)
    assert result.error is None and len(result.applied) == 2
    assert "self.features = FoldingSequential()" in result.text
    assert "self.transition = nn.Sequential()" in result.text
    original = module_from_file(ADDED, "added_original").Features().double()
    fixed = module_from_file(result.text, "added_fixed").Features().double()
    torch.manual_seed(1)
    for module in original.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-1, 1)
    fixed.load_state_dict(original.state_dict(), strict=True)
    assert list(dict(fixed.named_modules())) == list(dict(original.named_modules()))
    original.eval()
    fixed.eval()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        want, got = original(x), fixed(x)
    # float64, reductions of at most 27 products per output: folding reorders a few roundings
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
