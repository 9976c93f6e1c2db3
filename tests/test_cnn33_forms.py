"""Forms found while checking the blind batch cnn33 (hand-written classification backbones:
sparseml's model zoo and its training script, torchsat's satellite classifiers, a CIFAR
hyperparameter search, KD-Lib's CIFAR ResNets, an EMP-SSL projector, modelfeast's zoo).  The
fixtures are ours.

- An optimizer built in a function defined inside another and never called there (an Optuna
  ``objective`` the enclosing ``create_objective`` returns): file-scope rules (ADP012) read every
  function of the file, but a nested ``def`` was read only where its parent calls it (inlined as
  a closure), so a closure the parent returns or hands on was read nowhere.  Such a closure is
  now one more root of the file scope.
Near-misses: a closure the parent calls (inlined there: one finding, not two), an optimizer
that already chooses ``fused=``, an RMSprop.

- An ``nn.Sequential`` subclass filled by ``self.add_module(name, layer),`` with a stray comma
  after each call (old torchvision DenseNets, copied widely): the statement is a 1-tuple holding
  the call, which the Sequential walk did not read as a member added.
- The same DenseNet layer whose ``forward`` runs ``super().forward(x)`` and then a dropout under
  ``if self.drop_rate > 0`` with ``training=self.training``: such a forward runs the members in
  order, but any other read of ``self`` made it opaque.  A read of ``self.training``, or of an
  attribute the forward compares (a number, no module) and never calls, is a value, not a member
  run.
Near-misses: BN first (the transition), a forward that also calls a member outside the chain
(``out + self.conv1(x)``: folding would change that second call).

- A same-file factory returning a closure over layers (torchvision 0.3's
  ``_bn_function_factory(norm, relu, conv)`` returning ``bn_function``), bound by ``bn_function =
  _bn_function_factory(self.norm1, self.relu1, self.conv1)`` and called directly or through
  ``checkpoint``: the closure is a local function whose free names are the layers the call
  passes, so ``self.norm2(bn_function(*features))`` is conv1 -> norm2.  Reported, not fixed (the
  match spans a helper, as for the method form).
Near-misses: a closure ending in the activation (conv -> relu -> norm), the pre-activation norm1.
"""

from __future__ import annotations

import textwrap

from corpus_forms import assert_bn_fold_matches, finding_at, found, rules

from adopter.synth import fix_text

OBJECTIVE = textwrap.dedent("""\
    import torch.nn as nn
    import torch.optim as optim


    def create_objective(lr, momentum):
        def objective(trial):
            model = nn.Linear(4, 2)
            name = trial.suggest_categorical("optimizer", ["Adam", "SGD", "RMSprop"])
            if name == "Adam":
                optimizer = optim.Adam(model.parameters(), lr=lr)
            elif name == "SGD":
                optimizer = optim.SGD(model.parameters(), lr=lr, momentum=momentum)
            else:
                optimizer = optim.RMSprop(model.parameters(), lr=lr)
            return optimizer
        USE
""")


def test_optimizers_in_a_returned_closure_are_found_and_fixed():
    code = OBJECTIVE.replace("USE", "return objective")
    assert finding_at(code, "ADP012", "optim.Adam(") is not None
    assert finding_at(code, "ADP012", "optim.SGD(") is not None
    assert finding_at(code, "ADP012", "optim.RMSprop(") is None
    assert len(found(code, "ADP012")) == 2
    fixed = fix_text(code, "model.py", rules("ADP012")).text
    assert "optim.Adam(model.parameters(), lr=lr, fused=True)" in fixed
    assert "optim.SGD(model.parameters(), lr=lr, momentum=momentum, fused=True)" in fixed


def test_a_closure_handed_to_a_call_is_reported_once():
    # (read where the call hands it on, as before, and now also as a root of its own)
    code = OBJECTIVE.replace("USE", "study = make_study()\n    study.optimize(objective, n_trials=3)")
    assert len(found(code, "ADP012")) == 2


def test_a_closure_the_parent_calls_is_read_once():
    code = OBJECTIVE.replace("USE", "return objective(None)")
    # inlined where it is called, as before: one finding per optimizer, no second root
    assert len(found(code, "ADP012")) == 2


def test_a_closure_optimizer_already_fused_is_not_reported():
    code = OBJECTIVE.replace("USE", "return objective").replace(
        "lr=lr)", "lr=lr, fused=True)").replace("momentum=momentum)", "momentum=momentum, foreach=True)")
    assert found(code, "ADP012") == []


DENSE_SEQ = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class DenseLayer(nn.Sequential):
        def __init__(self, cin, growth, bn_size, drop_rate):
            super(DenseLayer, self).__init__()
            self.add_module('norm1', nn.BatchNorm2d(cin)),
            self.add_module('relu1', nn.ReLU(inplace=True)),
            self.add_module('conv1', nn.Conv2d(cin, bn_size * growth, kernel_size=1, bias=False)),
            self.add_module('norm2', nn.BatchNorm2d(bn_size * growth)),
            self.add_module('relu2', nn.ReLU(inplace=True)),
            self.add_module('conv2', nn.Conv2d(bn_size * growth, growth, kernel_size=3, padding=1, bias=False)),
            self.drop_rate = drop_rate
    FORWARD

    class Transition(nn.Sequential):
        def __init__(self, cin, cout):
            super(Transition, self).__init__()
            self.add_module('norm', nn.BatchNorm2d(cin)),
            self.add_module('relu', nn.ReLU(inplace=True)),
            self.add_module('conv', nn.Conv2d(cin, cout, kernel_size=1, bias=False)),
            self.add_module('pool', nn.AvgPool2d(kernel_size=2, stride=2)),
""")

SUPER_FORWARD = """
        def forward(self, x):
            new_features = super(DenseLayer, self).forward(x)
            if self.drop_rate > 0:
                new_features = F.dropout(new_features, p=self.drop_rate, training=self.training)
            return torch.cat([x, new_features], 1)
"""


def _dense(forward: str = "") -> str:
    body = textwrap.indent(textwrap.dedent(forward).strip("\n"), "    ") if forward else ""
    return DENSE_SEQ.replace("FORWARD", body)


def test_add_module_calls_with_a_stray_comma_fill_the_sequential():
    code = _dense()
    assert finding_at(code, "ADP007", "'norm2'") is not None
    assert len(found(code, "ADP007")) == 1  # the transition is BN first: no pair
    fixed = fix_text(code, "model.py", rules("ADP007")).text
    assert fixed != code
    assert_bn_fold_matches(code, fixed, "DenseLayer", (8, 4, 2, 0.0), (2, 8, 6, 6))


def test_a_forward_running_super_forward_with_a_compared_dropout_rate_runs_in_order():
    code = _dense(SUPER_FORWARD)
    assert finding_at(code, "ADP007", "'norm2'") is not None
    assert len(found(code, "ADP007")) == 1


def test_a_forward_calling_a_member_outside_the_chain_is_not_read_in_order():
    forward = SUPER_FORWARD.replace("return torch.cat([x, new_features], 1)",
                                    "return new_features + self.conv1(x)[:, :1]")
    assert found(_dense(forward), "ADP007") == []


FACTORY = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.utils.checkpoint as cp


    def _bn_function_factory(norm, relu, conv):
        def bn_function(*inputs):
            concated_features = torch.cat(inputs, 1)
            bottleneck_output = BODY
            return bottleneck_output

        return bn_function


    class DenseLayer(nn.Module):
        def __init__(self, cin, growth, bn_size, memory_efficient=False):
            super().__init__()
            self.norm1 = nn.BatchNorm2d(cin)
            self.relu1 = nn.ReLU(inplace=True)
            self.conv1 = nn.Conv2d(cin, bn_size * growth, kernel_size=1, bias=False)
            self.norm2 = nn.BatchNorm2d(bn_size * growth)
            self.relu2 = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(bn_size * growth, growth, kernel_size=3, padding=1, bias=False)
            self.memory_efficient = memory_efficient

        def forward(self, *prev_features):
            bn_function = _bn_function_factory(self.norm1, self.relu1, self.conv1)
            if self.memory_efficient and any(p.requires_grad for p in prev_features):
                bottleneck_output = cp.checkpoint(bn_function, *prev_features)
            else:
                bottleneck_output = bn_function(*prev_features)
            new_features = self.conv2(self.relu2(self.norm2(bottleneck_output)))
            return new_features
""")


def test_a_closure_a_factory_returns_over_the_layers_is_read():
    code = FACTORY.replace("BODY", "conv(relu(norm(concated_features)))")
    found_at = finding_at(code, "ADP007", "self.norm2(bottleneck_output)")
    assert found_at is not None
    assert len(found(code, "ADP007")) == 1  # norm1 comes first: no pair of its own
    result = fix_text(code, "model.py", rules("ADP007"))
    assert result.text == code  # reported, not fixed: the match spans the factory's closure


def test_a_closure_called_directly_through_a_keyword_factory_call_is_read():
    code = FACTORY.replace("BODY", "conv(relu(norm(concated_features)))").replace(
        "_bn_function_factory(self.norm1, self.relu1, self.conv1)",
        "_bn_function_factory(self.norm1, relu=self.relu1, conv=self.conv1)")
    assert finding_at(code, "ADP007", "self.norm2(bottleneck_output)") is not None


def test_a_closure_ending_in_the_activation_is_no_pair():
    code = FACTORY.replace("BODY", "relu(conv(norm(concated_features)))")
    assert found(code, "ADP007") == []
