"""adopter.records: the core's dataclass decorator behaves as the standard library's does for
what the tool writes, and the one-file check does not pay for the standard one."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
import textwrap

import pytest

from adopter import records


def _pair(frozen: bool, eq: bool = True):
    """The same class made by both decorators."""
    made = []
    for decorate, field in ((dataclasses.dataclass, dataclasses.field), (records.dataclass, records.field)):
        @decorate(frozen=frozen, eq=eq)
        class Point:
            x: int
            y: tuple = ()
            tags: list = field(default_factory=list)
            note: str = field(default="", compare=False)
            cache: dict = field(default_factory=dict, hash=False, compare=False)

        made.append(Point)
    return made


@pytest.mark.parametrize("frozen", [True, False])
def test_methods_behave_as_the_standard_decorators(frozen):
    std, own = _pair(frozen)
    for args, kwargs in (((1,), {}), ((1, (2, 3)), {"note": "n"}), ((), {"x": 4, "tags": [1]})):
        a, b = std(*args, **kwargs), own(*args, **kwargs)
        assert repr(a).replace("Point", "P") == repr(b).replace("Point", "P")
        assert [getattr(a, f.name) for f in dataclasses.fields(a)] == [getattr(b, n) for n in b.__record_fields__]
    # equality: compared fields only, same class only
    assert own(1, note="a") == own(1, note="b")
    assert own(1) != own(2) and own(1) != std(1)
    assert own(1, tags=[1]) != own(1)
    # a default factory runs per instance
    one, two = own(1), own(1)
    assert one.tags == [] and one.tags is not two.tags
    assert own.__match_args__ == ("x", "y", "tags", "note", "cache")


def test_hash_is_the_standard_value_so_sets_iterate_alike():
    std, own = _pair(frozen=True)
    values = [own(i, (i, "a"), (i,)) for i in range(50)]  # tags compared and hashed: a tuple here
    assert [hash(v) for v in values] == [hash(std(i, (i, "a"), (i,))) for i in range(50)]
    # the cache field takes no part (hash=False), nor does a non-compared one
    assert hash(own(1, tags=(), cache={"k": 1}, note="x")) == hash(own(1, tags=()))
    assert [v.x for v in set(values)] == [v.x for v in {std(i, (i, "a"), (i,)) for i in range(50)}]


def test_mutable_records_are_unhashable_and_eq_false_keeps_identity():
    std, own = _pair(frozen=False)
    assert own.__hash__ is None and std.__hash__ is None
    with pytest.raises(TypeError):
        hash(own(1))
    _, plain = _pair(frozen=False, eq=False)
    a = plain(1)
    assert a != plain(1) and a == a and hash(a) == object.__hash__(a)


def test_frozen_refuses_assignment_but_a_plain_subclass_may_add_attributes():
    _, own = _pair(frozen=True)
    p = own(1)
    with pytest.raises(AttributeError, match="cannot assign to field 'x'"):
        p.x = 2
    with pytest.raises(records.FrozenInstanceError):
        del p.y
    with pytest.raises(AttributeError):
        p.other = 1  # an instance of the record class itself: nothing may be added

    class Sub(own):
        pass

    s = Sub(1)
    s.extra = 5
    assert s.extra == 5
    with pytest.raises(AttributeError):
        s.x = 3


def test_inherited_fields_come_first_and_replace_keeps_the_class():
    @records.dataclass(frozen=True)
    class Base:
        value: object

    @records.dataclass(frozen=True)
    class Derived(Base):
        why: str = ""

    d = Derived(3, "because")
    assert repr(d).endswith(".Derived(value=3, why='because')")
    assert d != Base(3) and Derived(3) == Derived(3, "")
    r = records.replace(d, value=4)
    assert type(r) is Derived and (r.value, r.why) == (4, "because")
    with pytest.raises(TypeError):
        records.replace(d, nonsense=1)
    # a standard dataclass goes to dataclasses.replace
    std, _ = _pair(frozen=True)
    assert records.replace(std(1), x=2) == std(2)


def test_standard_helpers_copy_and_pickle_work_on_records():
    _, own = _pair(frozen=True)
    p = own(1, (2,), [3], "n")
    assert dataclasses.is_dataclass(p) and dataclasses.is_dataclass(own)
    assert [f.name for f in dataclasses.fields(p)] == ["x", "y", "tags", "note", "cache"]
    assert dataclasses.asdict(p) == {"x": 1, "y": (2,), "tags": [3], "note": "n", "cache": {}}
    assert dataclasses.replace(p, x=9) == own(9, (2,), [3])
    assert copy.deepcopy(p) == p and copy.copy(p) == p


def test_a_record_containing_itself_is_written_once():
    @records.dataclass
    class Box:
        items: list = records.field(default_factory=list)

    box = Box()
    box.items.append(box)
    assert repr(box).endswith(".Box(items=[...])")
    assert repr(box).endswith(".Box(items=[...])")  # the guard is released


def test_rules_pickle_round_trip():
    # the rule cache pickles records (adopter.ruleset)
    from adopter.ruleset import load_rules

    rules = load_rules()
    again = pickle.loads(pickle.dumps(rules))
    assert again == rules and [hash(r.kernel) for r in again] == [hash(r.kernel) for r in rules]


def test_a_one_file_check_imports_neither_dataclasses_nor_the_toml_parser(tmp_path):
    # what records.py and config._may_hold_table are for: start-up a user waits for
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["adopter"]\n')
    (tmp_path / "m.py").write_text(textwrap.dedent("""\
        import torch.nn as nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
                self.act = nn.GELU()
            def forward(self, x):
                return self.act(self.fc(x))
        """))
    probe = ("import sys\nfrom adopter.cli import main\nsys.argv = ['adopter', 'check', 'm.py']\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "sys.stderr.write(repr(sorted({'dataclasses', 'inspect', 'tomllib'} & set(sys.modules))))\n")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True)
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
