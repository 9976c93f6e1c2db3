"""Forms found while checking the blind batch research108 (3-D point clouds, medical
segmentation, detection, pose and video models).  The fixtures are ours.

- A point-cloud package's own ``nn.Sequential`` subclass chains torch layers and the package's
  spatial modules: its ``forward`` loops over the members as ``x, state = step(m, x, state)``,
  ``step`` a function of its module that picks by ``isinstance`` tests how to run the member
  (a torch layer on the features of the structured value, or on the running tensor; a spatial
  module on the structured value) and threads the structured value along.  Between two torch
  layers the running value is the first one's output tensor and the member a torch class, an
  instance of none of the package's classes: the helper's tests then take the branch
  ``x = module(x)``.  Its Linear -> GELU and Linear -> BatchNorm1d members were not read as
  pairs (ADP006, ADP008), the container being no plain Sequential.  Reported, not fixed (the
  container has its own code).
Near-misses (silent): a helper whose branch for a torch layer on a tensor runs the member on
something else (``module(x * 2)``, the structured value wrapped back), a test it cannot decide
(against a torch class), a helper handing back ``(state, x)``, a loop passing the state first.
"""

from __future__ import annotations

import textwrap
import types

import torch

from corpus_forms import found, line_of, rules

CLOUD = textwrap.dedent("""\
    import torch
    import torch.nn as nn


    class Cloud:
        def __init__(self, feats):
            self.feats = feats

        def replace(self, feats):
            return Cloud(feats)


    class CloudModule(nn.Module):
        pass


    def step(module, x, state):
        if isinstance(module, CloudModule) and isinstance(x, Cloud):
            return module(x), state
        elif not isinstance(module, CloudModule) and isinstance(x, Cloud):
            state = x
            x = module(x.feats)
        elif isinstance(x, torch.Tensor) and isinstance(module, CloudModule):
            x = module(state.replace(x))
        else:
            x = TENSOR_STEP
        return x, state


    class CloudSequential(nn.Sequential, CloudModule):
        def forward(self, x):
            state = x
            for m in self:
                x, state = LOOP_STEP
            if isinstance(x, torch.Tensor):
                x = state.replace(x)
            return x


    class Head(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.mlp = CloudSequential(
                nn.Linear(c, 4 * c),
                nn.GELU(),  # gelu pair
                nn.Linear(4 * c, c),
            )
            self.proj = CloudSequential(
                nn.Linear(c, c),
                nn.BatchNorm1d(c),  # bn pair
            )

        def forward(self, x):
            return self.proj(self.mlp(x))
""")


def _cloud(tensor_step: str = "module(x)", loop_step: str = "step(m, x, state)", test: str = "") -> str:
    code = CLOUD.replace("TENSOR_STEP", tensor_step).replace("LOOP_STEP", loop_step)
    if test:
        code = code.replace("elif isinstance(x, torch.Tensor) and isinstance(module, CloudModule):", test)
    return code


def _covers(code: str, rule: str, needle: str) -> bool:
    line = line_of(code, needle)
    return any(f.line <= line <= f.end_line for f in found(code, rule))


def test_helper_stepped_sequential_pairs_are_found():
    code = _cloud()
    assert _covers(code, "ADP006", "# gelu pair")
    assert _covers(code, "ADP008", "# bn pair")
    assert len(found(code, "ADP006")) == 1 and len(found(code, "ADP008")) == 1


def test_helper_stepped_sequential_runs_the_torch_layers_on_each_other():
    # what the reading claims: between two torch members the helper runs the next one on the
    # previous one's output tensor, so the chain is Linear -> GELU -> Linear on the features
    module = types.ModuleType("cloud_fixture")
    exec(compile(_cloud(), "cloud_fixture.py", "exec"), module.__dict__)
    torch.manual_seed(0)
    head = module.Head(6).eval()
    feats = torch.randn(5, 6, dtype=torch.float64)
    head = head.double()
    out = head.mlp(module.Cloud(feats))
    mlp = head.mlp
    expected = mlp[2](torch.nn.functional.gelu(mlp[0](feats)))
    # float64, three small products: rounding far below 1e-12
    assert isinstance(out, module.Cloud) and torch.allclose(out.feats, expected, rtol=0, atol=1e-12)
    proj = head.proj
    out = head.proj(module.Cloud(feats))
    assert torch.allclose(out.feats, proj[1](proj[0](feats)), rtol=0, atol=1e-12)


def test_helper_stepped_sequential_near_misses():
    # the torch layer on a tensor runs on something else
    assert found(_cloud(tensor_step="module(x * 2)"), "ADP006") == []
    assert found(_cloud(tensor_step="module(x * 2)"), "ADP008") == []
    # every member given the structured value back: the torch layer never sees the tensor
    wrapped = _cloud(test="elif isinstance(x, torch.Tensor) and isinstance(module, nn.Module):")
    assert found(wrapped, "ADP006") == [] and found(wrapped, "ADP008") == []
    # a test against a torch class cannot be decided for the member
    undecided = _cloud(test="elif isinstance(module, nn.Linear):")
    assert found(undecided, "ADP006") == []
    # the helper hands back (state, x)
    swapped = _cloud().replace("    return x, state\n", "    return state, x\n")
    assert swapped != _cloud()
    assert found(swapped, "ADP006") == [] and found(swapped, "ADP008") == []
    # the loop passes the state where the helper takes the value
    assert found(_cloud(loop_step="step(m, state, x)"), "ADP006") == []


def test_helper_stepped_sequential_in_a_sibling_module(tmp_path):
    from adopter.engine import analyze
    from adopter.structure.names import package_of

    code = _cloud()
    container, head = code.split("class Head(nn.Module):")
    package = tmp_path / "cloudpkg"
    (package / "nn").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "nn" / "__init__.py").write_text("")
    (package / "nn" / "sequential.py").write_text(container)
    model_text = ("import torch.nn as nn\n\nfrom cloudpkg.nn.sequential import CloudSequential\n\n\n"
                  "class Head(nn.Module):" + head)
    model = package / "models.py"
    model.write_text(model_text)
    got = [f for f in analyze(model_text, str(model), rules("ADP006", "ADP008"),
                              package=package_of(str(model))).findings]
    lines = {f.rule: (f.line, f.end_line) for f in got}
    assert set(lines) == {"ADP006", "ADP008"}
    gelu, bn = line_of(model_text, "# gelu pair"), line_of(model_text, "# bn pair")
    assert lines["ADP006"][0] <= gelu <= lines["ADP006"][1]
    assert lines["ADP008"][0] <= bn <= lines["ADP008"][1]
    # the same helper with the torch branch running the member on something else: nothing
    (package / "nn" / "sequential.py").write_text(container.replace("x = module(x)\n", "x = module(x + 1)\n"))
    model.write_text(model_text)  # (a new mtime for the model too; the sibling is read by size and mtime)
    assert [f for f in analyze(model_text, str(model), rules("ADP006", "ADP008"),
                               package=package_of(str(model))).findings] == []
