"""Hostile or careless rule files: every wrong type, a pattern nested 2,000 deep, a target that
parses but does not compile, a kernel import the target never calls, and a package that is not
one requirement.  Each gives ``file:line:col: key: message`` and exit code 2 from the CLI
(exit 1 would mean "findings"), never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from adopter.ruleset import RuleError, load_rule

ADOPTER = [sys.executable, "-c", "import sys; from adopter.cli import main; sys.exit(main())"]

HEAD = 'id = "USR001"\nname = "relu-kernel"\nsummary = "s"\nhelps = ["cpu:inference"]\n'
KERNEL = '[kernel]\npackage = "fastpkg"\nimport = "fastpkg.ops.relu"\nmin_version = "1.0"\n'
FORWARD = '[forward]\nsource = "$y = torch.relu($x)"\ntarget = "$y = fastpkg.ops.relu($x)"\n'
GOOD = HEAD + KERNEL + FORWARD


def _rule(top: str = "", kernel: str = KERNEL, forward: str = FORWARD, tail: str = "") -> str:
    return HEAD + top + kernel + forward + tail


BAD = {
    "helps=5": (_rule().replace('helps = ["cpu:inference"]', "helps = 5"), "helps: must be a list of strings"),
    "helps entry": (_rule().replace('"cpu:inference"', '"tpu:inference"'), "helps: entry 'tpu:inference' must be"),
    'examples="nope"': (_rule(top='examples = "nope"\n'), "examples: must be a list"),
    "examples=[1]": (_rule(top="examples = [1]\n"), "examples: must be a list of tables"),
    "example text": (_rule(tail='[[examples]]\nname = "x"\nbefore = 5\n'), "examples.before: must be a string"),
    "[init] source=5": (_rule(tail="[init]\nsource = 5\n"), "init.source: must be a list of strings"),
    "init table": (_rule(top="init = 3\n"), "init: must be a table"),
    "default": (_rule(top='default = "no"\n'), "default: must be true, false or a list of the targets"),
    "priority": (_rule(top="priority = true\n"), "priority: must be an integer"),
    "name": (_rule().replace('name = "relu-kernel"', "name = 3"), "name: must be a string"),
    "commutative": (_rule(forward=FORWARD + 'commutative = "yes"\n'), "forward.commutative: must be true or false"),
    "forward.target": (_rule(forward=FORWARD.replace('target = "$y = fastpkg.ops.relu($x)"', "target = 1")),
                       "forward.target: must be a string or a list"),
    "2,000-deep pattern": (_rule(forward='[forward]\nsource = "$y = ' + "torch.relu(" * 2000 + "$x" + ")" * 2000
                                 + '"\n'), "source: the pattern is nested too deeply"),
    "await in target": (_rule(forward=FORWARD.replace("$y = fastpkg", "$y = await fastpkg")),
                        "target is not valid Python: 'await' outside function"),
    "yield in target": (_rule(forward=FORWARD.replace("$y = fastpkg.ops.relu($x)", "$y = (yield fastpkg.ops.relu($x))")),
                        "target is not valid Python: 'yield' outside function"),
    "import not dotted": (_rule(kernel=KERNEL.replace("fastpkg.ops.relu", "relu")),
                          "kernel.import: 'relu' must be a dotted name"),
    "import never called": (_rule(kernel=KERNEL.replace("fastpkg.ops.relu", "fastpkg.ops.fast_relu")),
                            "kernel.import: no target calls fastpkg.ops.fast_relu"),
    "import a keyword": (_rule(kernel=KERNEL.replace("fastpkg.ops.relu", "fastpkg.class.relu")),
                         "kernel.import: 'fastpkg.class.relu' must be a dotted name"),
    "newline in package": (_rule(kernel=KERNEL.replace('"fastpkg"', '"fastpkg\\nevil==6.6.6"')),
                           "kernel.package: 'fastpkg\\nevil==6.6.6' is not a valid requirement name"),
    "specifier in package": (_rule(kernel=KERNEL.replace('"fastpkg"', '"fastpkg>=2"')),
                             "kernel.package: must be a package name only"),
    "marker in package": (_rule(kernel=KERNEL.replace('"fastpkg"', '"fastpkg; os_name == \'nt\'"')),
                          "kernel.package: must be a package name only"),
    "min_version": (_rule(kernel=KERNEL.replace('"1.0"', '"latest"')), "kernel.min_version: 'latest' is not a version"),
    "package type": (_rule(kernel=KERNEL.replace('"fastpkg"', "[1]")), "kernel.package: must be a string"),
    "container_steps=5": (_rule(forward=FORWARD + "container_steps = 5\n"),
                          "forward.container_steps: must be a list of strings"),
    "container_steps without synth": (_rule(forward=FORWARD + 'container_steps = ["$y"]\n'),
                                      "forward.container_steps needs forward.synth"),
    "container_steps unknown": (_rule(forward=FORWARD + 'synth = "sdpa"\ncontainer_steps = ["$z"]\n'),
                                "forward.container_steps must name $variables steps of the pattern assign"),
}


def test_the_good_rule_loads(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    rule = load_rule(path)
    assert rule.kernel.import_ == "fastpkg.ops.relu" and rule.fixable


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_rule_file_is_one_line_naming_file_and_key(tmp_path, case):
    text, message = BAD[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(RuleError) as info:
        load_rule(path)
    error = str(info.value)
    assert error.startswith(f"{path}:") and message in error, error
    assert "\n" not in error


@pytest.mark.parametrize("case", ["helps=5", 'examples="nope"', "[init] source=5", "2,000-deep pattern",
                                  "await in target", "newline in package"])
def test_the_cli_exits_2_with_the_message_and_no_traceback(tmp_path, case):
    text, message = BAD[case]
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.toml").write_text(text)
    model = tmp_path / "m.py"
    model.write_text("import torch\ny = torch.relu(torch.ones(2))\n")
    for command in ("check", "fix"):
        done = subprocess.run([*ADOPTER, command, "--rules-dir", str(rules), str(model)], capture_output=True,
                              text=True, timeout=120, env={"ADOPTER_NO_CACHE": "1", "PATH": "/usr/bin:/bin"})
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines() == [line for line in done.stderr.strip().splitlines()
                                                    if line.startswith(f"{rules / 'bad.toml'}:")]
        assert message in done.stderr


def test_a_valid_user_rule_gives_patched_code_that_runs(tmp_path):
    """The import the rule declares is what the patched code imports and calls: it runs."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "relu.toml").write_text(GOOD.replace("torch.relu", "math.fabs"))
    package = tmp_path / "fastpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "ops.py").write_text("def relu(x):\n    return abs(x) + 1000\n")
    model = tmp_path / "m.py"
    model.write_text("import math\n\n\ndef f(v):\n    y = math.fabs(v)\n    return y\n")
    done = subprocess.run([*ADOPTER, "fix", "--no-deps", "--select", "USR001", "--rules-dir", str(rules), str(model)],
                          capture_output=True, text=True, timeout=120, env={"ADOPTER_NO_CACHE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode in (0, 1), done.stderr
    patched = model.read_text()
    assert "from fastpkg.ops import relu" in patched and "relu(v)" in patched, patched
    run = subprocess.run([sys.executable, "-c", "import m; print(m.f(-2.0))"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "1002.0", run.stderr


# ------------------------------------------------------------------ keys the loader does not know

UNKNOWN = {
    # name: (rule text, expected "line:col: message" after the path)
    "[forward] typo": (_rule(forward=FORWARD + "comutative = false\n"),
                       "12:1: forward.comutative: unknown key 'comutative' (did you mean 'commutative'?)"),
    "top-level typo": (_rule(top='helsp = ["cpu"]\n'),
                       "5:1: helsp: unknown key 'helsp' (did you mean 'helps'?)"),
    "[kernel] typo": (_rule(kernel=KERNEL + 'min_verison = "2.0"\n'),
                      "9:1: kernel.min_verison: unknown key 'min_verison' (did you mean 'min_version'?)"),
    "[[examples]] typo, second example": (
        _rule(tail='[[examples]]\nvalid = "x = 1"\n[[examples]]\nname = "b"\nbefor = "y = torch.relu(x)"\n'),
        "16:1: examples[1].befor: unknown key 'befor' (did you mean 'before'?)"),
    "indented, nothing close": (_rule(forward=FORWARD + "  colour = 'red'\n"),
                                "12:3: forward.colour: unknown key 'colour'"),
    "unknown table": (_rule(tail="[forwad]\nsource = 'x'\n"), "12:2: forwad: unknown key 'forwad' (did you mean 'forward'?)"),
    "dotted keys": (HEAD + 'kernel.package = "fastpkg"\nkernel.import = "fastpkg.ops.relu"\n'
                    'forward.source = "$y = torch.relu($x)"\nforward.target = "$y = fastpkg.ops.relu($x)"\n'
                    "forward.comutative = false\n",
                    "9:1: forward.comutative: unknown key 'comutative' (did you mean 'commutative'?)"),
    "required key misspelt": (_rule(forward=FORWARD.replace("source =", "sorce =")),
                              "10:1: forward.sorce: unknown key 'sorce' (did you mean 'source'?)"),
}


@pytest.mark.parametrize("case", sorted(UNKNOWN))
def test_an_unknown_key_is_an_error_at_its_place_with_the_nearest_known_key(tmp_path, case):
    text, expected = UNKNOWN[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(RuleError) as info:
        load_rule(path)
    assert str(info.value) == f"{path}:{expected}"


def test_an_unknown_key_exits_2_from_the_cli(tmp_path):
    text, expected = UNKNOWN["[forward] typo"]
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "bad.toml").write_text(text)
    model = tmp_path / "m.py"
    model.write_text("import torch\ny = torch.relu(torch.ones(2))\n")
    done = subprocess.run([*ADOPTER, "check", "--rules-dir", str(rules), str(model)], capture_output=True,
                          text=True, timeout=120, env={"ADOPTER_NO_CACHE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"{rules / 'bad.toml'}:{expected}"


@pytest.mark.parametrize("folder", ["rules", "benchmarks/paper_rules"])
def test_every_shipped_rule_file_has_only_known_keys(folder):
    from pathlib import Path

    from adopter.ruleset import _parse_rule

    from adopter.ruleset import MEASURED_FILE

    files = sorted(p for p in (Path(__file__).parent.parent / folder).glob("*.toml") if p.name != MEASURED_FILE)
    assert files
    for path in files:
        _parse_rule(path.read_text(encoding="utf-8"), str(path))  # not the cache: this code reads it
