"""verify's skip for edited lines in an untaken branch that compares configuration numbers
(mend70) read a plain comparison of two bare names only (session 45, inplace72): the same
grouped-heads branch written ``kv_heads > 1 and kv_heads < n_heads``, ``1 <= kv_heads < n_heads``
or through attributes (``self.kv_heads < self.heads``) let a wrong tiling pass."""

import ast
import textwrap

import pytest
from stand_in import adp010_verdicts
from test_mend70_unexercised import G_FUSED, G_SCORES, G_SITE, G_TILED, GROUPED

from adopter.verify.core import _compares_two_names


@pytest.mark.parametrize("test, expected", [
    ("kv_heads < n_heads", True),
    ("self.kv_heads < self.heads", True),
    ("kv > 1 and kv < n", True),
    ("1 <= kv < n", True),
    ("self.kv != self.n or self.kv == 0", True),
    ("kv < 4", False),  # one name: not two configuration numbers
    ("kv < n and mask is not None", False),  # not only names and numbers
    ("a.shape[-1] < b", False),
    ("kv_heads < kv_heads", False),
    ("flag", False),
])
def test_which_tests_compare_two_names(test, expected):
    assert _compares_two_names(ast.parse(test, mode="eval").body) is expected


@pytest.mark.parametrize("condition", ["kv_heads > 1 and kv_heads < n_heads", "1 <= kv_heads < n_heads"])
def test_grouped_lines_edited_wrong_under_a_compound_test_do_not_pass(tmp_path, all_rules, quick, condition):
    source = textwrap.dedent(GROUPED).replace("if kv_heads < n_heads:", f"if {condition}:")
    site = G_SITE.replace("if kv_heads < n_heads:", f"if {condition}:")
    tiled = G_TILED.replace("if kv_heads < n_heads:", f"if {condition}:")
    assert source != textwrap.dedent(GROUPED)
    verdicts = adp010_verdicts(tmp_path / "g.py", source, (site, tiled), all_rules, quick)
    assert verdicts and all(v.verdict in ("fail", "skip") for v in verdicts), [(v.verdict, v.reason) for v in verdicts]
    assert any("never ran" in v.reason for v in verdicts if v.verdict == "skip") \
        or all(v.verdict == "fail" for v in verdicts)


def test_grouped_scores_only_patch_under_a_compound_test_passes(tmp_path, all_rules, quick):
    condition = "kv_heads > 1 and kv_heads < n_heads"
    source = textwrap.dedent(GROUPED).replace("if kv_heads < n_heads:", f"if {condition}:")
    verdicts = adp010_verdicts(tmp_path / "g.py", source, (G_SCORES, G_FUSED), all_rules, quick)
    assert verdicts and all(v.verdict == "pass" for v in verdicts), [(v.verdict, v.reason) for v in verdicts]


def test_filled_empty_also_covers_empty_strided_and_new_with_sizes():
    """The NaN fill of the patch's own uninitialised buffers (mend70) also reaches
    ``torch.empty_strided`` and ``x.new(sizes)``; ``x.new(data)`` keeps its data, and every
    function is put back afterwards."""
    import sys

    import torch

    from adopter.verify.build import filled_empty

    before = (torch.empty_strided, torch.Tensor.new)
    x = torch.ones(2)
    here = sys._getframe().f_code.co_filename
    line = sys._getframe().f_lineno + 2
    with filled_empty((here, {line, line + 1, line + 2, line + 3})):
        a = torch.empty_strided((2, 3), (3, 1))
        b = x.new(2, 3)
        c = x.new(torch.Size([4]))
        d = x.new([1.0, 2.0])
        e = torch.empty_strided((2, 3), (3, 1))
        f = x.new(3)
    assert torch.isnan(a).all() and torch.isnan(b).all() and torch.isnan(c).all()
    assert d.tolist() == [1.0, 2.0]
    assert (e == 0).all() and (f == 0).all()
    assert (torch.empty_strided, torch.Tensor.new) == before


def test_filled_empty_leaves_new_of_a_plain_tuple_as_data():
    """``x.new((2, 3))`` with a plain tuple copies data (``tensor([2., 3.])``), as ``x.new([2, 3])``
    does; only separate ints or a ``torch.Size`` are sizes (review58).  The fill must not zero or
    poison it."""
    import sys

    import torch

    from adopter.verify.build import filled_empty

    x = torch.ones(2, dtype=torch.float64)
    here = sys._getframe().f_code.co_filename
    line = sys._getframe().f_lineno + 2
    with filled_empty((here, {line, line + 1, line + 2})):
        data = x.new((2, 3))
        sized = x.new(torch.Size((2, 3)))
        spread = x.new(2, 3)
    assert data.tolist() == [2.0, 3.0]
    assert sized.shape == (2, 3) and torch.isnan(sized).all()
    assert spread.shape == (2, 3) and torch.isnan(spread).all()
    with filled_empty():
        assert x.new((4, 5)).tolist() == [4.0, 5.0]
