"""Forms found while checking the blind batch research51 (language and sequence models:
llm-infer's native engine, diffusionLM, llmcompoz, torchblocks, zenith-nlp, ...).  The
fixtures are ours.

- ADP009 / ADP013: the layers of each transformer layer held in an ``nn.ModuleDict`` that is a
  row of an ``nn.ModuleList`` (``self.layers.append(nn.ModuleDict(...))`` in a loop, or
  ``nn.ModuleList(nn.ModuleDict({...}) for _ in ...)``), forward reading ``layer["q_proj"]``
  for ``layer`` a row (also through a helper method the row is passed to).  Bindings recorded
  a ModuleDict's members under its key only when the ModuleDict itself was bound to an
  attribute (``attr.key``); a row's members were not recorded, so ``layer["q_proj"]`` typed as
  nothing.  Now a row that is an ``nn.ModuleDict`` written out records ``attr[].key``
  (bindings._record_row), which graph._dict_member already reads for a loop variable over
  the list, and now also for ``self.layers[i]["q_proj"]``.
- ADP009 / ADP013: the dict handed to ``nn.ModuleDict`` built by a same-class method
  (llm-infer's ``nn.ModuleDict(self._create_layer_dict())``, the method returning a local dict
  display that spreads another method's dict, ``**self._create_attn_projs(cfg)``, and adds an
  item under ``if cfg.qk_norm:``).  Now the members of the one dict such a method (or a
  same-file function) returns are read (bindings._returned_members), for a row and for a
  ModuleDict bound to an attribute; a dict whose name is rebound, updated or given a computed
  key, or one an imported function returns, is not.
"""

from __future__ import annotations

import textwrap

from corpus_forms import covered, found, rules

from adopter.synth import fix_text

ROWS = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn


    class Decoder(nn.Module):
        def __init__(self, d=16, h=32, n=2):
            super().__init__()
    BUILD
        def _qkv(self, x, layer):
            q = layer["q_proj"](x)
            k = layer["k_proj"](SOURCE)
            v = layer["v_proj"](SOURCE)
            return q, k, v

        def _mlp(self, x, layer):
            gate = F.silu(layer["gate_proj"](x))
            up = layer["up_proj"](x)
            return layer["down_proj"](gate * up)

        def forward(self, x, memory=None):
            for layer in self.layers:
                q, k, v = self._qkv(x, layer)
                x = x + F.scaled_dot_product_attention(q, k, v)
                x = x + self._mlp(x, layer)
            return x
    """)

LITERAL_DICT = ('{"q_proj": nn.Linear(d, d), "k_proj": nn.Linear(d, d), "v_proj": nn.Linear(d, d), '
                '"gate_proj": nn.Linear(d, h), "up_proj": nn.Linear(d, h), "down_proj": nn.Linear(h, d)}')

BUILDS = {
    "appended in a loop": (
        "        self.layers = nn.ModuleList()\n"
        "        for _ in range(n):\n"
        f"            self.layers.append(nn.ModuleDict({LITERAL_DICT}))\n"),
    "a generator of rows": (
        f"        self.layers = nn.ModuleList(nn.ModuleDict({LITERAL_DICT}) for _ in range(n))\n"),
    "a list comprehension, dict(...) keywords": (
        "        self.layers = nn.ModuleList([nn.ModuleDict(dict(q_proj=nn.Linear(d, d), k_proj=nn.Linear(d, d),\n"
        "            v_proj=nn.Linear(d, d), gate_proj=nn.Linear(d, h), up_proj=nn.Linear(d, h),\n"
        "            down_proj=nn.Linear(h, d))) for _ in range(n)])\n"),
    "built by a method returning a dict display": (
        "        self.layers = nn.ModuleList()\n"
        "        for _ in range(n):\n"
        "            self.layers.append(nn.ModuleDict(self._layer(d, h)))\n"
        "\n"
        "    def _layer(self, d, h):\n"
        f"        return {LITERAL_DICT}\n"),
    "a method's local dict spreading another method's, an item under an if": (
        "        self.qk_norm = False\n"
        "        self.layers = nn.ModuleList()\n"
        "        for _ in range(n):\n"
        "            self.layers.append(nn.ModuleDict(self._layer(d, h)))\n"
        "\n"
        "    def _linear(self, i, o):\n"
        "        return nn.Linear(i, o, bias=False)\n"
        "\n"
        "    def _attn(self, d):\n"
        "        return {\"q_proj\": self._linear(d, d), \"k_proj\": self._linear(d, d),\n"
        "                \"v_proj\": self._linear(d, d)}\n"
        "\n"
        "    def _layer(self, d, h):\n"
        "        layer: dict[str, nn.Module] = {\n"
        "            **self._attn(d),\n"
        "            \"gate_proj\": self._linear(d, h),\n"
        "            \"up_proj\": self._linear(d, h),\n"
        "            \"down_proj\": self._linear(h, d),\n"
        "        }\n"
        "        if self.qk_norm:\n"
        "            layer[\"q_norm\"] = nn.LayerNorm(d)\n"
        "        return layer\n"),
}


def _code(build: str, source: str = "x") -> str:
    return ROWS.replace("BUILD\n", build).replace("SOURCE", source)


def test_module_dict_rows_are_read_by_key():
    for why, build in BUILDS.items():
        code = _code(build)
        assert covered(code, 'q = layer["q_proj"](x)', "ADP009"), why
        assert covered(code, "return layer[\"down_proj\"](gate * up)", "ADP013"), why


INDEXED = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn


    class Stack(nn.Module):
        def __init__(self, d=16, n=2):
            super().__init__()
            self.n = n
            self.layers = nn.ModuleList(nn.ModuleDict({"q_proj": nn.Linear(d, d), "k_proj": KEY,
                                                       "v_proj": nn.Linear(d, d)}) for _ in range(n))

        def forward(self, x):
            for i in range(self.n):
                q = self.layers[i]["q_proj"](x)
                k = self.layers[i]["k_proj"](x)
                v = self.layers[i]["v_proj"](x)
                x = F.scaled_dot_product_attention(q, k, v)
            return x
    """)


def test_module_dict_rows_indexed_then_keyed():
    assert covered(INDEXED.replace("KEY", "nn.Linear(d, d)"), 'q = self.layers[i]["q_proj"](x)', "ADP009")
    # near-miss: the key projection of each row a Conv1d
    assert not covered(INDEXED.replace("KEY", "nn.Conv1d(d, d, 1)"), 'q = self.layers[i]["q_proj"](x)', "ADP009")


def test_module_dict_rows_fix_to_one_projection():
    code = _code(BUILDS["a method's local dict spreading another method's, an item under an if"])
    fixed = fix_text(code, "model.py", rules("ADP009")).text
    assert 'fused_qkv(x, layer["q_proj"], layer["k_proj"], layer["v_proj"])' in fixed


NEAR_MISSES = {
    # key and value of another tensor: cross attention, no site
    "k and v of memory": (BUILDS["appended in a loop"], "memory"),
    # the key projection a Conv1d: not three Linears
    "a Conv1d under the key": (BUILDS["appended in a loop"].replace('"k_proj": nn.Linear(d, d)',
                                                                     '"k_proj": nn.Conv1d(d, d, 1)'), "x"),
    # the method's dict updated by a call: its members are not written out
    "a dict the method updates": ((
        "        self.layers = nn.ModuleList()\n"
        "        for _ in range(n):\n"
        "            self.layers.append(nn.ModuleDict(self._layer(d, h)))\n"
        "\n"
        "    def _layer(self, d, h):\n"
        f"        layer = {LITERAL_DICT}\n"
        "        layer.update(k_proj=nn.Conv1d(d, d, 1))\n"
        "        return layer\n"), "x"),
    # a computed key replacing a member
    "an item under a computed key": ((
        "        self.layers = nn.ModuleList()\n"
        "        for _ in range(n):\n"
        "            self.layers.append(nn.ModuleDict(self._layer(d, h, 'k_proj')))\n"
        "\n"
        "    def _layer(self, d, h, name):\n"
        f"        layer = {LITERAL_DICT}\n"
        "        layer[name] = nn.Conv1d(d, d, 1)\n"
        "        return layer\n"), "x"),
    # the dict's name bound twice: which one is returned is not read
    "a dict bound twice": ((
        "        self.layers = nn.ModuleList()\n"
        "        for _ in range(n):\n"
        "            self.layers.append(nn.ModuleDict(self._layer(d, h)))\n"
        "\n"
        "    def _layer(self, d, h):\n"
        f"        layer = {LITERAL_DICT}\n"
        "        if h > 64:\n"
        "            layer = {\"q_proj\": nn.Conv1d(d, d, 1)}\n"
        "        return layer\n"), "x"),
    # a spread of something that is not a same-class method's dict
    "a spread of a parameter": ((
        "        self.layers = nn.ModuleList()\n"
        "        for _ in range(n):\n"
        "            self.layers.append(nn.ModuleDict(self._layer(d, h, {})))\n"
        "\n"
        "    def _layer(self, d, h, extra):\n"
        f"        return {{**{LITERAL_DICT}, **extra}}\n"), "x"),
}


def test_module_dict_row_near_misses_are_no_site():
    for why, (build, source) in NEAR_MISSES.items():
        assert not covered(_code(build, source), 'q = layer["q_proj"](x)', "ADP009"), why


DIRECT = textwrap.dedent("""\
    import torch.nn.functional as F
    from torch import nn


    def make_projections(d):
        return {"to_q": nn.Linear(d, d), "to_k": nn.Linear(d, d), "to_v": nn.Linear(d, d)}


    class Attention(nn.Module):
        def __init__(self, d=16):
            super().__init__()
            self.proj = nn.ModuleDict(BUILT)

        def _projections(self, d):
            return {"to_q": nn.Linear(d, d), "to_k": nn.Linear(d, d), "to_v": nn.Linear(d, d)}

        def forward(self, x):
            q = self.proj["to_q"](x)
            k = self.proj["to_k"](x)
            v = self.proj["to_v"](x)
            return F.scaled_dot_product_attention(q, k, v)
    """)


def test_module_dict_bound_to_an_attribute_from_a_function_or_method():
    for built in ("make_projections(d)", "self._projections(d)"):
        assert covered(DIRECT.replace("BUILT", built), 'q = self.proj["to_q"](x)', "ADP009"), built


def test_module_dict_from_an_imported_function_is_not_read():
    # a function of another module with the same name as nothing here: what it returns is unknown
    code = DIRECT.replace("BUILT", "make_projections(d)").replace(
        "from torch import nn\n", "from torch import nn\n\nfrom .layers import make_projections\n", 1).replace(
        "def make_projections(d):", "def _unused(d):")
    assert not covered(code, 'q = self.proj["to_q"](x)', "ADP009")


def test_module_dict_rows_of_another_kind_stay_unread():
    # a row that is an nn.Sequential is read as the Sequential it is (its pairs reported
    # there), never as a dict of members
    code = _code("        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(d, d), nn.GELU()) for _ in range(n))\n")
    assert not found(code, "ADP009")
