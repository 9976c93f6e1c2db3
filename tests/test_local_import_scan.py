"""names.may_import_locally answers as the regex it replaced (``_LOCAL_IMPORT_TEXT.search``): a
scan from each ``import``/``from`` by what precedes it, cheaper than a regex tried at every
character of the file. Every short string over the characters that decide it, and the
repository's own files, must get the regex's answer."""

import itertools
from pathlib import Path

from adopter.structure.names import _LOCAL_IMPORT_TEXT, may_import_locally

PIECES = ["import", "from", " ", "\t", "\n", ";", ":", "\\", "x", "_", "\f", "\r", "\x1c", "é", "\u00a0", "importa"]


def _regex(text):
    return _LOCAL_IMPORT_TEXT.search(text) is not None


def test_every_short_string_gets_the_regexs_answer():
    for n in range(4):
        for parts in itertools.product(PIECES, repeat=n):
            text = "".join(parts)
            assert may_import_locally(text) == _regex(text), repr(text)


def test_the_forms_it_is_for():
    assert may_import_locally("def f():\n    import torch\n")
    assert may_import_locally("def f(): import torch\n")
    assert may_import_locally("x = 1; from torch import nn\n")
    assert may_import_locally("y = 1 + \\\n  0\\\nimport os\n") == _regex("y = 1 + \\\n  0\\\nimport os\n")
    assert not may_import_locally("import torch\nfrom torch import nn\n\n\ndef f(x):\n    return x  # imported from\n")
    assert not may_import_locally("def f(reimport, fromage):\n    return reimport\n")
    assert may_import_locally(None)


def test_the_repositorys_files_get_the_regexs_answer():
    root = Path(__file__).resolve().parents[1]
    texts = [p.read_text(encoding="utf-8") for p in sorted(root.glob("adopter/**/*.py")) + sorted(root.glob("tests/*.py"))]
    assert any(_regex(t) for t in texts) and any(not _regex(t) for t in texts)
    for text in texts:
        assert may_import_locally(text) == _regex(text)
