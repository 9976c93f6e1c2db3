"""A module-level table the file changes after binding it is not read as its literal (review35).

``NORMS = {"bn2d": nn.BatchNorm2d, ...}`` followed by ``NORMS["bn2d"] = nn.LayerNorm``: the
factory ``build_norm("bn2d")`` then builds a LayerNorm, so a conv followed by it is no
conv -> BatchNorm pair.  The literal alone no longer says what the table holds, in the checked
file and in a sibling module alike; the untouched table is still read (the positive).  The
fixtures are ours (the siblings2 package builders, a package folder in ``tmp_path``).
"""

from __future__ import annotations

import textwrap

from test_siblings2_forms import ANNOTATED, CONV_LAYER, NORM_MODULE, _package, _pairs

from adopter.structure.literals import written_in_place

PLAIN = ANNOTATED.replace(": dict[str, type]", "")

WRITES = {
    "item": '\nNORMS["bn2d"] = nn.LayerNorm',
    "update": "\nNORMS.update(bn2d=nn.LayerNorm)",
    "in_function": '\n\ndef use_layernorm():\n    NORMS["bn2d"] = nn.LayerNorm',
    "merge": '\nNORMS |= {"bn2d": nn.LayerNorm}',
}


def _same_file(tmp_path, name: str, table: str):
    body = CONV_LAYER.split("\n\n\n", 1)[1]
    text = NORM_MODULE.replace("TABLE", table).replace("from .registry import load_norms\n", "") + "\n\n" + body
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


def test_untouched_table_is_read(tmp_path):
    assert _pairs(_same_file(tmp_path, "plain", PLAIN))
    top = _package(tmp_path, "untouched", {"norm.py": NORM_MODULE.replace("TABLE", PLAIN),
                                          "ops.py": CONV_LAYER.replace("PKG", "untouched")})
    assert _pairs(top / "ops.py")


def test_table_written_after_its_literal_is_not_read(tmp_path):
    for case, write in WRITES.items():
        assert not _pairs(_same_file(tmp_path, f"same_{case}", PLAIN + write)), case
        assert not _pairs(_same_file(tmp_path, f"ann_{case}", ANNOTATED + write)), case


def test_sibling_table_written_after_its_literal_is_not_read(tmp_path):
    for index, (case, write) in enumerate(WRITES.items()):
        top = _package(tmp_path, f"written{index}", {"norm.py": NORM_MODULE.replace("TABLE", PLAIN + write),
                                                   "ops.py": CONV_LAYER.replace("PKG", f"written{index}")})
        assert not _pairs(top / "ops.py"), case


def test_written_in_place_reads_stores_not_loads():
    text = textwrap.dedent("""\
        x = NORMS["a"]
        y = NORMS[k](3)
        if NORMS[k] == z: pass
        self.NORMS[k] = 1
        OTHER_NORMS["a"] = 2
    """)
    assert not written_in_place("NORMS", text)
    for write in ('NORMS["a"] = 1', "del NORMS['a']", "NORMS.setdefault('a', 1)", "NORMS += [1]",
                  "def f():\n    global NORMS"):
        assert written_in_place("NORMS", text + write + "\n"), write
