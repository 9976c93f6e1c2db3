"""Look-alikes of session 34's readings that compute something else (review34).

A layer class read off a same-file record's field (``cfg.norm_layer`` of ``cfg: Cfg``, cnn51):

- the parameter's own default is a construction of the record (``cfg: Cfg = Cfg(8,
  nn.InstanceNorm2d)``): the module built with no argument reads the field that construction
  passes, not the field's default; one that passes nothing for it still reads the default;
- a ``field(init=False)`` is no parameter of the generated constructor, so a construction's
  positional arguments fill the fields after it one place earlier.
"""

from __future__ import annotations

from corpus_forms import found, line_of

_RECORD = """\
from dataclasses import dataclass, field
from typing import Callable, Optional

from torch import nn


@dataclass
class Cfg:
    channels: int = 8
    norm_layer: Callable = nn.BatchNorm2d


class Stage(nn.Module):
    def __init__(self, cfg: Cfg = DEFAULT):
        super().__init__()
        self.conv = nn.Conv2d(cfg.channels, cfg.channels, 3)
        self.norm = cfg.norm_layer(cfg.channels)

    def forward(self, x):
        return self.norm(self.conv(x))
"""


def _reported(code):
    return any(f.line <= line_of(code, "return self.norm(") <= f.end_line for f in found(code, "ADP007"))


def test_a_record_default_that_passes_another_norm_is_not_a_pair():
    for default in ("Cfg(8, nn.InstanceNorm2d)", "Cfg(norm_layer=nn.GroupNorm)", "Cfg(**OPTIONS)"):
        assert not _reported(_RECORD.replace("DEFAULT", default)), default


def test_a_record_default_that_keeps_the_field_default_is_a_pair():
    for default in ("Cfg()", "Cfg(16)", "Cfg(norm_layer=nn.BatchNorm2d)", "None"):
        assert _reported(_RECORD.replace("DEFAULT", default)), default


_INIT_FALSE = """\
from dataclasses import dataclass, field
from typing import Callable, Optional

from torch import nn


@dataclass
class Cfg:
    scratch: Callable = field(init=False, default=nn.Identity)
    norm_layer: Callable = nn.InstanceNorm2d
    extra: Optional[Callable] = None


class Stage(nn.Module):
    def __init__(self, cfg: Cfg):
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3)
        self.norm = cfg.norm_layer(8)
        self.more = cfg.extra

    def forward(self, x):
        return self.norm(self.conv(x))


def build():
    return Stage(Cfg(PASSED))
"""


def test_positions_skip_a_field_the_constructor_does_not_take():
    # Cfg(nn.InstanceNorm2d, nn.BatchNorm2d) passes norm_layer=InstanceNorm2d, extra=BatchNorm2d
    assert not _reported(_INIT_FALSE.replace("PASSED", "nn.InstanceNorm2d, nn.BatchNorm2d"))
    # Cfg(nn.BatchNorm2d): the one construction passes BatchNorm2d for norm_layer
    assert _reported(_INIT_FALSE.replace("PASSED", "nn.BatchNorm2d"))


# A keyword read off the function's ``**kwargs`` with a default (cnn49): the default is what the
# read returns only while the body leaves the dict as the call made it.
_KWARGS = """\
from torch import nn


class Block(nn.Module):
    def __init__(self, c, **kwargs):
        super().__init__()
CHANGE
        self.conv = nn.Conv2d(c, c, 3)
        self.norm = kwargs.get("norm_layer", nn.BatchNorm2d)(c)
        self.extra = nn.Identity(**kwargs) if "extra" in kwargs else None

    def forward(self, x):
        return self.norm(self.conv(x))
"""


def test_a_kwargs_default_read_after_the_body_changes_the_dict_is_not_a_pair():
    for change in ('kwargs["norm_layer"] = nn.InstanceNorm2d', "kwargs.update(norm_layer=nn.GroupNorm)",
                   'kwargs.setdefault("norm_layer", nn.InstanceNorm2d)', "kwargs |= {'norm_layer': nn.GroupNorm}",
                   "configure(kwargs)"):
        assert not _reported(_KWARGS.replace("CHANGE", "        " + change)), change


def test_a_kwargs_default_read_of_a_dict_only_read_is_a_pair():
    for change in ("pass", 'kwargs.pop("bias", None)', 'assert kwargs["depth"] > 0'):
        assert _reported(_KWARGS.replace("CHANGE", "        " + change)), change
