"""Forms of the dev corpus's remaining misses (session 30, helper misses36), read by their
computation.  The fixtures are ours.

- An optimizer class taken from a module-level literal table (efficientvit's
  ``REGISTERED_OPTIMIZER_DICT: dict[...] = {"sgd": (torch.optim.SGD, {"momentum": 0.9}),
  ...}``, then ``optimizer_class, default_params = REGISTERED_OPTIMIZER_DICT[name]`` and
  ``optimizer_class(params, lr, **default_params)``).  The file binds the table once and reads
  it only by assigning one entry, so the class name holds one of the entries' classes: a callee
  chosen at run time, as ``klass = SGD if sgd else AdamW`` is (the fix passes ``fused=True``
  only when the name holds the class it matched).  The entry's dict literal, where only this
  statement reads the table and the function only iterates it, tests membership in it, gives
  a key the loop over it yields a new value (no new key) and spreads it, passes the entries'
  own keys: none is ``fused``/``foreach``/``differentiable``.  Also a table of classes
  (``klass = OPTIMIZERS[name]``).
Near-misses: an entry's dict holding ``foreach``; a new key given to the dict (``d["fused"] =
False``, ``d.update(...)``); the table changed elsewhere (an item store), so its classes are
not certain; the table read by a second statement (its dicts may be changed there).
"""

from __future__ import annotations

import textwrap

from corpus_forms import found, rules

from adopter.synth import fix_text

TABLE = textwrap.dedent('''
    import torch

    __all__ = ["OPTIMIZERS", "build"]

    OPTIMIZERS: dict[str, tuple] = {
        "sgd": (torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
        "adamw": (torch.optim.AdamW, {"betas": (0.9, 0.999), "eps": 1e-8}),
    }


    def build(params, name, given, lr):
        klass, defaults = OPTIMIZERS[name]
        given = given or {}
        for key in defaults:
            if key in given:
                defaults[key] = given[key]
        return klass(params, lr, **defaults)
''')


def test_an_optimizer_class_and_its_keywords_from_a_literal_table_are_read():
    hits = found(TABLE, "ADP012")
    assert [f.line for f in hits] == [TABLE.splitlines().index("    return klass(params, lr, **defaults)") + 1]
    fixed = fix_text(TABLE, "model.py", rules("ADP012")).text
    assert '**({"fused": True} if klass is torch.optim.AdamW else {})' in fixed
    compile(fixed, "model.py", "exec")


def test_a_table_of_classes_is_read_too():
    code = textwrap.dedent('''
        import torch

        OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}


        def build(params, name):
            klass = OPTIMIZERS[name]
            return klass(params, lr=1e-3)
    ''')
    assert len(found(code, "ADP012")) == 1


def test_an_entry_dict_choosing_the_implementation_is_not_matched():
    code = TABLE.replace('"eps": 1e-8}', '"eps": 1e-8, "foreach": False}')
    assert found(code, "ADP012") == []


def test_a_key_added_to_the_entry_dict_is_not_certain():
    for added in ('    defaults["fused"] = False\n', '    defaults.update(fused=False)\n'):
        code = TABLE.replace("    return klass(", added + "    return klass(")
        assert found(code, "ADP012") == [], added


def test_a_table_changed_elsewhere_or_read_twice_is_not_read():
    changed = TABLE + '\n\nOPTIMIZERS["mine"] = (object, {"fused": True})\n'
    assert found(changed, "ADP012") == []
    twice = TABLE + '\n\ndef tweak(name):\n    _, d = OPTIMIZERS[name]\n    d["fused"] = False\n'
    assert found(twice, "ADP012") == []
