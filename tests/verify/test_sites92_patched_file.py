"""A patched copy runs its module-level code as the file it replaces (sites92, session 47):
``adopter fix`` edits in place, so a module reading a file beside it at import
(``exec(open(os.path.dirname(__file__) + '/version.py').read())``) finds it in the copy too."""

from __future__ import annotations

import os

from adopter.verify.loader import ModuleLoader

MODULE = """\
import os

exec(open(os.path.dirname(os.path.abspath(__file__)) + '/version.py').read())
IMPORTED_AS = __file__


def value():
    return VERSION
"""


def test_a_patched_copy_reads_the_files_beside_the_original(tmp_path):
    (tmp_path / "version.py").write_text("VERSION = '1.2.3'\n")
    path = tmp_path / "reads_version.py"
    path.write_text(MODULE)
    with ModuleLoader(str(path)) as loader:
        patched = loader.patched(MODULE.replace("return VERSION", "return VERSION + '!'"), "t")
        assert patched.value() == "1.2.3!"
        assert patched.IMPORTED_AS == str(path)  # module-level code saw the original's path
        assert patched.__file__ != str(path) and os.path.exists(patched.__file__)  # the copy, afterwards
