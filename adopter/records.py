"""``dataclass``, ``field`` and ``replace`` as the tool uses them, made in a fraction of the time.

The standard library's decorator costs about a millisecond per class (a frozen one more): it
builds a ``Field`` per attribute through several checks, compiles each generated method
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``) in its
own ``exec`` wrapped in a factory function, and asks ``inspect`` for a signature to write into
a class without a docstring.  The check path defines some fifty such classes: with the
decorator they were a fifth of a one-file ``adopter check``.

This decorator makes the same methods with the same behaviour for what the tool writes:
``@dataclass``, ``@dataclass(frozen=True)``, ``@dataclass(eq=False)``, ``@dataclass(slots=True)``
(mutable records only); fields with a default, a
``field(default=...)`` or ``field(default_factory=...)``, ``compare=False``, ``hash=False``,
``repr=False``; a record class deriving from another.  ``__init__`` takes the fields in order
(the base class's first), ``__repr__`` is ``Name(a=1, b=2)`` (``...`` for a record met again
while it is being written), ``__eq__`` compares the compared fields of two instances of the
same class, and ``__hash__`` is the hash of those fields' tuple for a frozen class (the same
value the standard decorator's gives, so sets iterate in the same order) and ``None`` for a
mutable one with ``eq``.  A frozen instance refuses ``setattr``/``delattr`` with
:class:`FrozenInstanceError` (an ``AttributeError``).  Methods the class defines itself are kept.
All methods of a class are compiled in one ``exec``.

``dataclasses.fields``, ``replace``, ``asdict`` and ``is_dataclass`` keep working on these
classes (benchmarks and tests use them): ``__dataclass_fields__`` is built from the standard
library's ``Field`` the first time something asks for it.
"""

from __future__ import annotations

__all__ = ["FrozenInstanceError", "dataclass", "field", "fields_of", "replace"]

_MISSING = type("_Missing", (), {"__repr__": lambda self: "MISSING"})()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class Field:
    __slots__ = ("name", "type", "default", "default_factory", "repr", "hash", "compare")

    def __init__(self, default, default_factory, repr_, hash_, compare):
        self.name = self.type = None
        self.default = default
        self.default_factory = default_factory
        self.repr = repr_
        self.hash = hash_
        self.compare = compare


def field(*, default=_MISSING, default_factory=_MISSING, repr: bool = True,  # noqa: A002
          hash: bool | None = None, compare: bool = True):  # noqa: A002
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Field(default, default_factory, repr, hash, compare)


def dataclass(cls=None, /, *, frozen: bool = False, eq: bool = True, slots: bool = False):
    def wrap(cls):
        made = _make(cls, frozen, eq)
        return _slotted(made) if slots else made

    return wrap if cls is None else wrap(cls)


def fields_of(cls_or_obj) -> tuple[Field, ...]:
    """The record's fields in ``__init__`` order."""
    return tuple(_fields(cls_or_obj if isinstance(cls_or_obj, type) else type(cls_or_obj)).values())


def replace(obj, /, **changes):
    """A copy of ``obj`` (a record or a standard dataclass) with ``changes``."""
    own = getattr(type(obj), "__record_fields__", None)
    if own is None:
        import dataclasses

        return dataclasses.replace(obj, **changes)
    for name in own:
        if name not in changes:
            changes[name] = getattr(obj, name)
    return obj.__class__(**changes)


def _fields(cls) -> dict:
    found = getattr(cls, "__record_fields__", None)
    if found is None:
        raise TypeError(f"{cls.__name__} is not a record")
    return found


class _StdFields:
    """``__dataclass_fields__``, built from :mod:`dataclasses`' own ``Field`` when read."""

    def __get__(self, obj, cls):
        import dataclasses

        built = {}
        for name, f in _fields(cls).items():
            std = dataclasses.field(default=f.default if f.default is not _MISSING else dataclasses.MISSING,
                                    default_factory=(f.default_factory if f.default_factory is not _MISSING
                                                     else dataclasses.MISSING),
                                    repr=f.repr, hash=f.hash, compare=f.compare)
            std.name = name
            std.type = f.type
            std._field_type = dataclasses._FIELD  # what dataclasses.fields() keeps
            built[name] = std
        return built


_STD_FIELDS = _StdFields()


class _Params:
    """``__dataclass_params__``: what pprint and other readers of dataclasses look at."""

    __slots__ = ("init", "repr", "eq", "order", "unsafe_hash", "frozen", "match_args", "kw_only", "slots",
                 "weakref_slot")

    def __init__(self, eq: bool, frozen: bool):
        self.init = self.repr = self.match_args = True
        self.order = self.unsafe_hash = self.kw_only = self.slots = self.weakref_slot = False
        self.eq, self.frozen = eq, frozen


def _make(cls, frozen: bool, eq: bool):
    fields: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        inherited = base.__dict__.get("__record_fields__")
        if inherited:
            fields.update(inherited)
    own = cls.__dict__
    for name, annotation in own.get("__annotations__", {}).items():
        if isinstance(annotation, str) and annotation.startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = own.get(name, _MISSING)
        if isinstance(value, Field):
            f = value
            if f.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
        else:
            f = Field(value, _MISSING, True, None, True)
        f.name, f.type = name, annotation
        fields.pop(name, None)
        fields[name] = f
    cls.__record_fields__ = fields

    space: dict = {"_setattr": object.__setattr__, "_MISSING": _MISSING, "_guard": _repr_guard,
                   "_FrozenInstanceError": FrozenInstanceError, "_cls": cls, "_names": frozenset(fields)}
    lines: list[str] = []
    made: list[str] = []
    if "__init__" not in own:
        # a field with a default factory takes the _MISSING sentinel as its default
        params, body = [], []
        for name, f in fields.items():
            if f.default_factory is not _MISSING:
                space[f"_factory_{name}"] = f.default_factory
                params.append(f"{name}=_MISSING")
                value = f"_factory_{name}() if {name} is _MISSING else {name}"
            elif f.default is not _MISSING:
                space[f"_default_{name}"] = f.default
                params.append(f"{name}=_default_{name}")
                value = name
            else:
                params.append(name)
                value = name
            # (a frozen record's fields through object.__setattr__, not written into its
            # __dict__: reading ``__dict__`` makes the instance a dict of its own, and every
            # later field read -- a Ref's ``key``, read throughout the matcher -- is then a dict
            # look-up instead of a specialised load from the instance's inline values; that
            # cost more than the calls it saved, about 1% of the analysis)
            body.append(f"  _setattr(__record_self__, {name!r}, {value})" if frozen
                        else f"  __record_self__.{name} = {value}")
        lines.append(f"def __init__(__record_self__, {', '.join(params)}):")
        lines.extend(body or ["  pass"])
        made.append("__init__")
    if "__repr__" not in own:
        shown = ", ".join(f"{name}={{self.{name}!r}}" for name, f in fields.items() if f.repr)
        lines.append("def __repr__(self):")
        lines.append("  key = _guard(self)")
        lines.append("  if key is None: return '...'")
        lines.append(f"  try: return f'{{self.__class__.__qualname__}}({shown})'")
        lines.append("  finally: _guard.busy.discard(key)")
        made.append("__repr__")
    if eq and "__eq__" not in own:
        compared = [name for name, f in fields.items() if f.compare]
        mine = "".join(f"self.{name}," for name in compared)
        theirs = "".join(f"other.{name}," for name in compared)
        lines.append("def __eq__(self, other):")
        lines.append(f"  if other.__class__ is self.__class__: return ({mine}) == ({theirs})")
        lines.append("  return NotImplemented")
        made.append("__eq__")
    class_hash = own.get("__hash__", _MISSING)
    explicit_hash = not (class_hash is _MISSING or (class_hash is None and "__eq__" in own))
    if eq and frozen and not explicit_hash:
        hashed = "".join(f"self.{name}," for name, f in fields.items() if (f.compare if f.hash is None else f.hash))
        lines.append(f"def __hash__(self): return hash(({hashed}))")
        made.append("__hash__")
    if frozen:
        # as dataclasses: a field of any instance, or any attribute of the class's own
        # instances, is read-only (a plain subclass may add attributes of its own)
        for name in ("__setattr__", "__delattr__"):
            if name in own:
                raise TypeError(f"cannot overwrite attribute {name} in class {cls.__name__}")
        lines.append("def __setattr__(self, name, value):")
        lines.append("  if type(self) is _cls or name in _names:")
        lines.append("    raise _FrozenInstanceError(f'cannot assign to field {name!r}')")
        lines.append("  super(_cls, self).__setattr__(name, value)")
        lines.append("def __delattr__(self, name):")
        lines.append("  if type(self) is _cls or name in _names:")
        lines.append("    raise _FrozenInstanceError(f'cannot delete field {name!r}')")
        lines.append("  super(_cls, self).__delattr__(name)")
        made += ["__setattr__", "__delattr__"]
    if lines:
        exec("\n".join(lines), space)  # noqa: S102 (the record's own methods, as dataclasses makes them)
    qualname = cls.__qualname__
    for name in made:
        function = space[name]
        function.__qualname__ = f"{qualname}.{name}"
        setattr(cls, name, function)
    if eq and not frozen and not explicit_hash:
        cls.__hash__ = None
    if "__match_args__" not in own:
        cls.__match_args__ = tuple(fields)
    cls.__dataclass_fields__ = _STD_FIELDS
    cls.__dataclass_params__ = _Params(eq, frozen)
    return cls


def _slotted(cls):
    """``cls`` made again with ``__slots__`` for its fields (``dataclass(slots=True)``): no
    ``__dict__`` per instance, so building and freeing many of them costs less (the flow
    builder's ``Node``: some 150k a pass over the paper's files) and reading a field is a slot
    load.  The generated methods take the defaults from their own namespace, not from the class,
    so the class keeps no field defaults (a slot and a class attribute of one name conflict).
    Mutable records only: a frozen one's methods name its class."""
    if cls.__dataclass_params__.frozen:
        raise TypeError("slots=True is for mutable records")
    names = tuple(cls.__record_fields__)
    space = {key: value for key, value in cls.__dict__.items()
             if key not in names and key not in ("__dict__", "__weakref__")}
    space["__slots__"] = names
    made = type(cls)(cls.__name__, cls.__bases__, space)
    made.__qualname__ = cls.__qualname__
    return made


def _repr_guard(obj):
    """A key while ``obj`` is being written by its ``__repr__``, None when it already is (a
    record that contains itself is written ``...`` the second time)."""
    import threading

    key = (id(obj), threading.get_ident())
    if key in _repr_guard.busy:
        return None
    _repr_guard.busy.add(key)
    return key


_repr_guard.busy = set()
