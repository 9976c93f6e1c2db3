"""The real pipeline on research-style code of our own: ``adopter fix`` on a copy, then
``adopter verify`` on the original, for each way verify builds a class without a Hugging Face
config (a config dataclass, an attribute-bag config, a factory function in another file, a CNN
taking a block class and block counts, keyword-only ViT sizes, a file importing packages that are
not installed).

Every patch ``fix`` writes must verify ``pass`` (the rules may learn to rewrite more of these
files; each new patch must pass too), nothing may ``fail``, and each fixture checks the
construction path it exists for."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from adopter.cli import main
from adopter.config import Config
from adopter.ruleset import load_rules
from adopter.verify import verify_file
from adopter.verify.result import FAIL, PASS, SKIP

RESEARCH = Path(__file__).parent / "fixtures" / "research"
# The rules on by default for some target (those off on the CPU for lack of a measured gain,
# ADP005/ADP007 among them, are what these models hold) and the softmax rule (ADP004, off by
# default), whose patch of the research models' hand-written attention these tests verify.
SELECT = ",".join(sorted({r.id for r in load_rules() if r.default or r.default_targets} | {"ADP004"}))


def _copy(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(RESEARCH / name, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def _fixed_count(out: str) -> dict[str, int]:
    """Rule -> patches written, from ``adopter fix``'s "fixed 3 (ADP007 x2, ADP005)" line."""
    counts: dict[str, int] = {}
    for match in re.finditer(r"fixed \d+ \(([^)]*)\)", out):
        for part in match.group(1).split(","):
            rule, _, times = part.strip().partition(" x")
            counts[rule] = counts.get(rule, 0) + int(times or 1)
    return counts


def fix_then_verify(tmp_path: Path, capsys, name: str, rel: str):
    """``adopter fix`` on a copy of the fixture, ``adopter verify`` on the original: the
    per-patch rows (the findings fix rewrote), the combined rows, and fix's per-rule counts."""
    original = _copy(tmp_path / "original", name)
    copy = _copy(tmp_path / "fixed", name)
    before = (copy / rel).read_text()
    assert main(["fix", str(copy / rel), "--no-config", "--no-deps", "--select", SELECT]) == 1
    captured = capsys.readouterr()
    fixed = _fixed_count(captured.out + captured.err)
    assert fixed and (copy / rel).read_text() != before
    code = main(["verify", str(original / rel), "--no-config", "--no-benchmark", "--output-format", "json",
                 "--select", SELECT])
    data = json.loads(capsys.readouterr().out)
    assert "errors" not in data
    rows = [r for r in data["results"] if not r["combined"]]
    patches = [r for r in rows if not r["reason"].startswith("not patched")]
    combined = [r for r in data["results"] if r["combined"]]
    written = {}
    for row in patches:
        written[row["rule"]] = written.get(row["rule"], 0) + 1
    # verify checked every patch fix wrote (each rule alone, so it may also check a rule's patch
    # that another rule's wins over when all apply: ADP010 over ADP004 on one softmax)
    assert all(written.get(rule, 0) >= count for rule, count in fixed.items()), (written, fixed)
    assert not [r for r in data["results"] if r["verdict"] == FAIL], data["results"]
    assert code == 0
    return patches, combined


def _row(rows, rule: str, class_name: str):
    found = [r for r in rows if r["rule"] == rule and r["class"] == class_name]
    assert found, (rule, class_name, rows)
    return found[0]


def test_dataclass_config_gpt(tmp_path, capsys):
    patches, combined = fix_then_verify(tmp_path, capsys, "gpt_dataclass", "model.py")
    assert all(r["verdict"] == PASS for r in patches), patches
    attention = _row(patches, "ADP004", "CausalSelfAttention")
    # built from the GPTConfig dataclass, shrunk, heads dividing the width
    assert attention["details"]["built"].startswith("CausalSelfAttention(config=GPTConfig(")
    assert "n_embd=32" in attention["details"]["built"] and "n_head=4" in attention["details"]["built"]
    # the manual attention is the else branch of `if self.flash:`: verify switched the flag
    assert "self.flash=False" in attention["reason"]
    embedding = _row(patches, "ADP005", "GPT")
    assert embedding["details"]["inputs"].startswith("int64[2, 8]")  # token ids for the Embedding
    assert combined and all(r["verdict"] == PASS for r in combined)
    # all patches together, with the flag the attention patch needed: every patch ran in GPT
    (whole,) = [r for r in combined if r["class"] == "GPT"]
    # (the optimizer patch of GPT.configure_optimizers, ADP012, builds an optimizer: not model code)
    patched_in_gpt = len([r for r in patches if r["class"] in ("GPT", "CausalSelfAttention", "Block", "MLP")
                          and r["rule"] != "ADP012"])
    assert f"{patched_in_gpt} of them ran in GPT" in whole["reason"] and "self.flash=False" in whole["reason"]


def test_attribute_bag_config_encoder(tmp_path, capsys):
    patches, combined = fix_then_verify(tmp_path, capsys, "attr_bag", "encoder.py")
    assert all(r["verdict"] == PASS for r in patches), patches
    for row in patches:
        assert "ModelArgs(dim=32, n_heads=4" in row["details"]["built"]
    attention = [r for r in patches if r["class"] == "SelfAttention"]
    # one softmax per branch of `if mask is not None`: each patch is reached with its own branch
    masked = [r for r in attention if r["line"] == 39]
    unmasked = [r for r in attention if r["line"] == 41]
    assert masked and all("float[2, 1, 1, 8]" in r["details"]["inputs"] for r in masked)
    assert unmasked and all("mask=None" in r["details"]["inputs"] for r in unmasked)
    assert [r["verdict"] for r in combined] == [PASS]


def test_factory_function_in_another_file(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "factory", "zoo/convnet.py")
    (row,) = patches
    assert row["verdict"] == PASS and row["class"] == "ConvNet"
    # the layout key exists only in zoo/factories.py: convnet_small(num_classes=10)
    assert row["details"]["built"] == "ConvNet(layout='small', num_classes=10)"
    assert row["details"]["inputs"] == "float[2, 3, 32, 32]"


def test_cifar_resnet_with_block_and_block_counts(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "cifar", "resnet.py")
    assert all(r["verdict"] == PASS for r in patches), patches
    network = _row(patches, "ADP007", "ResNet")
    assert re.match(r"ResNet\(block=(BasicBlock|Bottleneck), num_blocks=\[1, 1, 1, 1\]", network["details"]["built"])
    # the projection shortcut exists only when the stride or the width changes
    shortcut = [r for r in patches if r["class"] == "BasicBlock" and "stride=2" in r["reason"]]
    assert shortcut, patches


def test_vit_keyword_only_sizes(tmp_path, capsys):
    patches, combined = fix_then_verify(tmp_path, capsys, "vit", "vit.py")
    assert all(r["verdict"] == PASS for r in patches), patches
    vit = _row(patches, "ADP007", "ViT")
    built = vit["details"]["built"]
    for part in ("image_size=32", "patch_size=8", "dim=32", "heads=4", "dim_head=8", "depth=2"):
        assert part in built, built
    assert vit["details"]["inputs"] == "float[2, 3, 32, 32]"
    assert [r["verdict"] for r in combined] == [PASS]


def test_blocks_built_and_fed_as_their_model_does(tmp_path, capsys):
    patches, combined = fix_then_verify(tmp_path, capsys, "capture", "blocks.py")
    assert all(r["verdict"] == PASS for r in patches), patches
    attention = _row(patches, "ADP004", "RotaryAttention")
    assert attention["details"]["built"].startswith("RotaryAttention(...) as Net builds it (Net(args=NetArgs(")
    assert "complex64[" in attention["details"]["inputs"]  # the rotary table the model passes
    bottleneck = _row(patches, "ADP007", "Bottleneck")
    assert bottleneck["details"]["built"].startswith("Bottleneck(...) as Net builds it")
    assert [r["verdict"] for r in combined] == [PASS]


MISSING = ("fairscale", "tiktoken", "wandb", "PIL")


@pytest.mark.skipif(any(importlib.util.find_spec(m) for m in MISSING),
                    reason="the fixture needs these packages to be absent")
def test_module_importing_missing_packages(tmp_path, capsys):
    patches, _ = fix_then_verify(tmp_path, capsys, "missing_import", "model.py")
    verdicts = {r["class"]: r for r in patches}
    assert verdicts["OutputBlock"]["verdict"] == PASS and verdicts["ConvBN"]["verdict"] == PASS
    assert sorted(verdicts["OutputBlock"]["details"]["not_installed"]) == sorted(MISSING)
    logged = verdicts["LoggedBlock"]
    assert logged["verdict"] == SKIP
    assert logged["reason"] == "needs wandb, which is not installed here: install wandb where verify runs"
    # the stubs lived only for the run
    assert not [m for m in sys.modules if m.split(".")[0] in MISSING]


def test_a_wrong_patch_of_research_code_fails(tmp_path, all_rules, quick):
    """The inferred construction proves things: a patch that changes the numerics is caught."""
    folder = _copy(tmp_path, "gpt_dataclass")

    def bad_fix(text, path, rules, package=None):
        patched = text.replace("att = F.softmax(att, dim=-1)", "att = F.softmax(att * 1.01, dim=-1)")
        return SimpleNamespace(text=patched, applied=[], skipped=[], error=None)

    results = verify_file(str(folder / "model.py"), [r for r in all_rules if r.id == "ADP004"], Config(),
                          benchmark=False, fix=bad_fix, options=quick)
    (result,) = [r for r in results if not r.combined]
    assert result.verdict == FAIL and result.class_name == "CausalSelfAttention"
    assert "differs" in result.reason


def test_text_table_keeps_the_config_section_name(capsys):
    from adopter.verify.cli import render_text
    from adopter.verify.result import VerifyResult

    reason = "name a factory in [tool.adopter.verify] factories for Net: cannot infer argument `block`"
    render_text([VerifyResult("ADP007", "m.py", 3, "Net", SKIP, reason)])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.count("│") >= 9]
    cells = " ".join(line.split("│")[-2].strip() for line in lines)  # the reason column, wrapped
    assert " ".join(cells.split()) == reason


def test_arguments_and_inputs_from_how_the_code_uses_them(tmp_path, capsys):
    """Semantics, not names: a window indexed per axis is a tuple of sizes, a kernel handed to
    ``nn.Conv2d`` is a kernel size, a forward that unpacks four sizes or rearranges a 4-axis
    pattern takes 4-D inputs (one that unpacks six sizes, windows of the tokens its position index
    is built for), rotary tables broadcast against per-head queries; a branch the
    original cannot run is a skip that says so."""
    patches, _ = fix_then_verify(tmp_path, capsys, "shapes", "layers.py")
    by_class: dict[str, list] = {}
    for row in patches:
        by_class.setdefault(row["class"], []).append(row)
    for name in ("WindowedSelfAttention", "ConvProjectedAttention", "PatchGridAttention", "RotaryTableAttention",
                 "GridOfWindowsAttention"):
        assert by_class[name] and all(r["verdict"] == PASS for r in by_class[name]), by_class.get(name)
    window = by_class["WindowedSelfAttention"][0]["details"]
    assert "window=(2, 2)" in window["built"] and window["inputs"] == "float[2, 4, 32]"  # 2x2 window: 4 tokens
    # the patch tests `mask is not None` itself: checked on both sides, the per-window mask
    # ([windows, N, N]) given the second time
    windowed = _row(patches, "ADP010", "WindowedSelfAttention")
    assert "also with mask given" in windowed["reason"], windowed["reason"]
    conv = by_class["ConvProjectedAttention"][0]["details"]
    assert "proj_kernel=3" in conv["built"] and conv["inputs"] == "float[2, 32, 32, 32]"
    assert by_class["PatchGridAttention"][0]["details"]["inputs"] == "float[2, 4, 8, 32]"
    assert by_class["RotaryTableAttention"][0]["details"]["inputs"] == "float[2, 8, 32], float[8, 8], float[8, 8]"
    # six axes unpacked from the input; windows of the 3 x 3 tokens the position index is built for
    assert by_class["GridOfWindowsAttention"][0]["details"]["inputs"] == "float[2, 1, 1, 3, 3, 32]"
    (cosine,) = by_class["CosineSimilarityAttention"]
    assert cosine["verdict"] == SKIP
    assert "cosine=True" in cosine["reason"] and "raised in the original" in cosine["reason"]
    assert "batch1 must be a 3D tensor" in cosine["reason"]


def test_a_patch_wrong_only_when_the_mask_is_given_fails(tmp_path, all_rules, quick):
    """The patch tests `mask is not None` itself; it passes without a mask, so verify checks the
    other side too: a patch that scales the per-window mask is a fail, naming that side."""
    from adopter.synth import fix_text

    folder = _copy(tmp_path, "shapes")
    rules = [r for r in all_rules if r.id == "ADP010"]

    def wrong_on_the_mask_side(text, path, rules, package=None):
        result = fix_text(text, path, rules, package)
        marker = "mask.unsqueeze(1).unsqueeze(0).expand("
        assert marker in result.text  # the synthesized mask expression this test breaks
        return SimpleNamespace(text=result.text.replace(marker, "(2 * " + marker[:-len(".expand(")] + ").expand(", 1),
                               applied=result.applied, skipped=result.skipped, error=None)

    results = verify_file(str(folder / "layers.py"), rules, Config(), benchmark=False, fix=wrong_on_the_mask_side,
                          options=quick)
    (windowed,) = [r for r in results if r.class_name == "WindowedSelfAttention" and not r.combined]
    assert windowed.verdict == FAIL and windowed.reason.startswith("with mask given: "), windowed.reason
    assert "differs" in windowed.reason


def test_package_whose_init_raises_and_registries_that_refuse_a_second_entry(tmp_path, capsys):
    """hub/__init__.py raises (a compiled part built for another torch): the module imports with
    the package kept as far as its __init__ ran; its decorators register the class and a builder
    in registries that refuse a duplicate name: the patched copy runs without them."""
    patches, _ = fix_then_verify(tmp_path, capsys, "registry", "hub/attention.py")
    row = _row(patches, "ADP010", "Attention")
    assert row["verdict"] == PASS, row
    (stopped,) = row["details"]["init_skipped"]
    assert stopped.startswith("hub/__init__.py stopped at RuntimeError: hub: the compiled operators")
    # the class (a registry's method) and the builder (under a functools.wraps wrapper)
    assert row["details"]["registration_skipped"] == ["Attention", "attention_small"]
    assert not [m for m in sys.modules if m.split(".")[0] == "hub"]


def test_a_module_that_raises_itself_is_still_not_imported(tmp_path, all_rules, quick):
    """Only a package __init__ is run as far as it goes: an error in the analysed file is its own."""
    package = _copy(tmp_path, "registry") / "hub"
    path = package / "attention.py"
    path.write_text(path.read_text() + '\nraise RuntimeError("this module needs a GPU")\n')
    rules = [r for r in all_rules if r.id == "ADP010"]
    (result,) = [r for r in verify_file(str(path), rules, Config(), options=quick) if not r.combined]
    assert result.verdict == SKIP
    assert "RuntimeError: this module needs a GPU" in result.reason and "init_skipped" not in result.details


def test_inputs_from_what_the_module_errors_say(tmp_path, capsys):
    """No call site and no shape unpacked in forward: the module's own errors name what it takes.
    A bias table over 7 x 7 tokens ("size of tensor a (8) must match ... (49)") gets 49 tokens, a
    helper unpacking four sizes a [batch, h, w, c] grid, keys and values read although they
    default to None are given."""
    patches, _ = fix_then_verify(tmp_path, capsys, "errors", "layers.py")
    rows = {r["class"]: r for r in patches if r["rule"] == "ADP010"}
    assert {name: r["verdict"] for name, r in rows.items()} == {
        "GridBiasAttention": PASS, "GridWindowAttention": PASS, "KeyValueAttention": PASS}
    assert rows["GridBiasAttention"]["details"]["inputs"] == "float[2, 49, 32]"
    assert rows["GridWindowAttention"]["details"]["inputs"] == "float[2, 8, 8, 32]"
    assert rows["KeyValueAttention"]["details"]["inputs"] == "float[2, 8, 32], float[2, 8, 32], float[2, 8, 32]"
    assert all("match" in r["reason"] for r in rows.values())


def test_a_layer_only_its_model_can_feed(tmp_path, capsys):
    """The attention takes its layout as strings; the model that feeds it takes a keyword-only
    frame count used only as a number (``num_frames * patches``) and a video whose rank only a
    starred unpack states ("expected at least 6, got 5" from an image adds the frame axis)."""
    patches, _ = fix_then_verify(tmp_path, capsys, "errors", "video.py")
    row = _row(patches, "ADP010", "FrameAttention")
    assert row["verdict"] == PASS, row
    assert "ClipModel(dim=32, num_frames=8)" in row["details"]["built"]
    assert row["details"]["inputs"] == "float[2, 48, 32], 'b (f n) d', 'b (f n) d', f=3"


def test_a_switch_tested_through_self_and_annotations_of_a_missing_package(tmp_path, capsys):
    """``shifted`` has no default and no telling name: the class tests it (``if self.shifted:``),
    so it is a switch; ``Float[Tensor, "b n d"]`` from a package that is not installed is
    evaluated while the module imports (a placeholder), and nothing uses it afterwards."""
    patches, _ = fix_then_verify(tmp_path, capsys, "errors", "switch.py")
    row = _row(patches, "ADP010", "ShiftedWindowAttention")
    assert row["verdict"] == PASS, row
    assert "shifted=False" in row["details"]["built"]
    assert row["details"]["not_installed"] == ["shape_typing_not_installed"]


def test_module_level_statements_that_raise_here_are_left_out(tmp_path, capsys):
    """A table loaded at import from a file that is not there, a default argument reading a
    config that is not there (the package's ``__init__`` imports the module): the module imports without those two statements (placeholders
    for the names they bind, in the original and the patched copy alike); the attention that
    uses neither is run and compared, the one that reads the table is a skip that names it."""
    patches, _ = fix_then_verify(tmp_path, capsys, "unavailable", "zoo/layers.py")
    row = _row(patches, "ADP010", "Attention")
    assert row["verdict"] == PASS and "match" in row["reason"], row["reason"]
    left_out = row["details"]["left_out_at_import"]
    assert [entry.split(":")[0] for entry in left_out] == ["line 13 (GAMMAS)", "line 49 (Model)"]
    assert "FileNotFoundError" in left_out[0] and "FileNotFoundError" in left_out[1]
    table = _row(patches, "ADP010", "TableAttention")
    assert table["verdict"] == SKIP
    assert table["reason"].startswith("needs `GAMMAS`, which line 13 of layers.py defines; that statement raised "
                                      "FileNotFoundError"), table["reason"]
    assert not [m for m in sys.modules if m.split(".")[0] == "zoo"]


def test_a_module_that_refuses_to_load_on_purpose_is_not_left_out(tmp_path, all_rules, quick):
    """An ``assert`` at module level (a version or device requirement) is the module's word: not left out."""
    folder = _copy(tmp_path, "unavailable")
    path = folder / "zoo" / "layers.py"
    text = path.read_text().replace("GAMMAS = torch.load", "assert torch.cuda.device_count() > 8, 'needs 8 GPUs'\nGAMMAS = torch.load")
    path.write_text(text)
    rules = [r for r in all_rules if r.id == "ADP010"]
    results = [r for r in verify_file(str(path), rules, Config(), options=quick) if not r.combined]
    assert results and all(r.verdict == SKIP and "needs 8 GPUs" in r.reason for r in results), results


def test_a_size_the_module_says_must_be_divisible(tmp_path, capsys):
    """``num_position_features`` is guessed as a width (32); the forward raises "not divisible by
    the number of components (6)": the build is tried again with that argument raised to a
    multiple of 6 that keeps its own small divisors (48), and the attention runs and compares."""
    patches, _ = fix_then_verify(tmp_path, capsys, "errors", "components.py")
    row = _row(patches, "ADP010", "RelativeAttention")
    assert row["verdict"] == PASS and "match" in row["reason"], row["reason"]
    assert row["details"]["built"].endswith("with num_position_features=48 (divisible by 6)"), row["details"]


def test_an_image_side_squared_into_the_sequence(tmp_path, capsys):
    """The layer's image side (default 32) squared is its image token count, which must fit the
    sequence it is built with; the one function that builds it passes a side defaulting to None.
    None is not taken for the callers' value, and when no build runs the image side is tried
    small (4: 16 image tokens), and the text attention runs and compares."""
    patches, _ = fix_then_verify(tmp_path, capsys, "errors", "grid.py")
    row = _row(patches, "ADP010", "GridTextAttention")
    assert row["verdict"] == PASS and "match" in row["reason"], row["reason"]
    assert row["details"]["built"].endswith("with image_size=4 (a small grid)"), row["details"]
    assert "image_size=None" not in row["details"]["built"]


def test_a_branch_in_a_helper_function_taken_through_the_stored_argument(tmp_path, capsys):
    """The patch falls back to the original when ``sum(shift) > 0``, a test in the module-level
    function the layer calls with ``self.shift_size``; the guessed shift is not zero, so the kernel
    does not run by default.  The test is traced through the call to the constructor argument, and
    the layer is built again with every entry of it 0."""
    patches, _ = fix_then_verify(tmp_path, capsys, "windows", "layers.py")
    row = _row(patches, "ADP010", "WindowAttention")
    assert row["verdict"] == PASS and "match" in row["reason"], row["reason"]
    assert "reached with shift_size=zeros (constructor)" in row["reason"]
    assert "shift_size=[0, 0]" in row["details"]["built"], row["details"]


def test_two_projects_whose_packages_share_a_name_verify_one_after_the_other(tmp_path, capsys):
    """One process verifies a file of one project's ``zoo`` package, then a file of another
    project's ``zoo``: the first project's modules are gone from ``sys.modules`` when its verify
    ends, so the second imports its own package (not "No module named 'zoo.layers'")."""
    first, _ = fix_then_verify(tmp_path / "first", capsys, "factory", "zoo/convnet.py")
    assert not [m for m in sys.modules if m.split(".")[0] == "zoo"]
    second, _ = fix_then_verify(tmp_path / "second", capsys, "unavailable", "zoo/layers.py")
    row = _row(second, "ADP010", "Attention")
    assert row["verdict"] == PASS, row["reason"]


def test_tensor_parallel_layers_built_in_a_single_process_group(tmp_path, capsys):
    """The attention's projections are tensor-parallel shards that ask a module-level group for
    its size while they are built; the group is missing until a launcher calls the library's
    setter, which itself needs the default process group.  Verify starts a single-process gloo
    group, calls the function that assigns the global the failing accessor tested (with a shard
    count of 1), builds and compares the attention, and undoes both when the file is done."""
    import torch.distributed as dist

    patches, _ = fix_then_verify(tmp_path, capsys, "sharded", "shardlib/blocks.py")
    row = _row(patches, "ADP010", "ShardedSelfAttention")
    assert row["verdict"] == PASS and "match" in row["reason"], row["reason"]
    assert row["details"]["built"].endswith(
        "set up a single-process gloo group, shardlib.groups.setup_tensor_parallel(1)"), row["details"]
    assert not dist.is_initialized()


def test_sizes_per_axis_and_a_grid_given_as_ints(tmp_path, capsys):
    """The constructor's pooling kernel and stride are annotated ``list[int]`` (and iterated):
    each is the guessed size on every axis of the convolution they are handed to (Conv2d: two);
    the forward's ``hw: tuple[int, int]`` is a grid of the sequence's tokens, here behind a
    summary token (8 tokens: a grid of 7)."""
    patches, _ = fix_then_verify(tmp_path, capsys, "sequences", "grid.py")
    row = _row(patches, "ADP010", "PooledGridAttention")
    assert row["verdict"] == PASS and "match" in row["reason"], row["reason"]
    assert "pool_kernel=[3, 3]" in row["details"]["built"] and "pool_stride=[1, 1]" in row["details"]["built"]
    assert row["details"]["inputs"].endswith(", (1, 7)"), row["details"]


def test_a_list_of_feature_maps_zipped_with_the_layers_built_per_entry(tmp_path, capsys):
    """The levels' widths default to none, and the forward raises without a feature map per
    level: the class is built again with two levels, and the forward's ``feats: list[Tensor]``
    (a string annotation) is one image per layer it is zipped with, each of that layer's input
    channels."""
    patches, _ = fix_then_verify(tmp_path, capsys, "sequences", "levels.py")
    row = _row(patches, "ADP010", "MultiLevelQueryPool")
    assert row["verdict"] == PASS and "match" in row["reason"], row["reason"]
    levels = re.search(r"levels=\((\d+), (\d+)\)", row["details"]["built"])
    assert levels, row["details"]
    first, second = levels.groups()
    assert row["details"]["inputs"].startswith(f"(float[2, {first}, 32, 32], float[2, {second}, 32, 32]), "
                                               "float[2, 8, 32]"), row["details"]


def test_a_tensor_parallel_group_kept_in_the_model_file_itself(tmp_path, capsys):
    """The group handle and its setter live in the verified file: the original and the patched
    module each get their own (the setter is read from the raising frame's file, both modules'
    handles are set and both put back)."""
    import torch.distributed as dist

    patches, _ = fix_then_verify(tmp_path, capsys, "sharded", "inline.py")
    row = _row(patches, "ADP010", "SplitHeadAttention")
    assert row["verdict"] == PASS and "match" in row["reason"], row["reason"]
    assert "launch_groups(1)" in row["details"]["built"], row["details"]
    assert not dist.is_initialized()


def test_weights_the_constructor_leaves_unset_are_drawn_before_comparing(tmp_path, capsys):
    """Every weight is NaN until a checkpoint is loaded: NaN outputs compare equal on both sides
    and would prove nothing.  The weights are drawn afresh (the patched copy loads them), and the
    comparison sees real numbers: a nonzero float32 rounding difference."""
    patches, _ = fix_then_verify(tmp_path, capsys, "sharded", "poisoned.py")
    row = _row(patches, "ADP010", "LoadedAttention")
    assert row["verdict"] == PASS and "match" in row["reason"], row["reason"]
    assert "3 parameter(s) the constructor left uninitialised drawn afresh" in row["details"]["built"], row["details"]
    assert 0 < row["max_abs_diff"] < 1e-4, row


def test_inputs_the_forward_code_demands(tmp_path, capsys):
    """No call site feeds these layers; their own code says what they take.  A block attention
    asserts its sides are multiples of the block and raises unless the channels are its width:
    the first input is resized to meet both (``[2, 32, 64, 64]`` for a width of 32 and a block of
    64).  A cross-attention's ``y`` goes through a LayerNorm: features of its width, not labels.
    A downsampling attention views its tokens as the 6 x 6 grid it was built for ("shape '[2, 6,
    6, 32]' is invalid for input of size 512"): 36 tokens."""
    patches, _ = fix_then_verify(tmp_path, capsys, "demands", "blocks.py")
    rows = {r["class"]: r for r in patches if r["rule"] == "ADP010"}
    assert {name: r["verdict"] for name, r in rows.items()} == {
        "BlockAttention": PASS, "ContextAttention": PASS, "GridDownsampleAttention": PASS}, rows
    assert all("match" in r["reason"] for r in rows.values())
    assert rows["BlockAttention"]["details"]["built"] == "BlockAttention(dim=32, block_size=64)"
    assert rows["BlockAttention"]["details"]["inputs"] == "float[2, 32, 64, 64]"
    assert rows["ContextAttention"]["details"]["inputs"] == "float[2, 8, 32], float[2, 8, 32]"
    assert rows["GridDownsampleAttention"]["details"]["inputs"] == "float[2, 36, 32]"


def test_an_argument_annotated_with_a_class_that_needs_no_arguments(tmp_path, capsys):
    """``cache: MaskCache`` (a dict subclass, the annotation a string under ``from __future__
    import annotations``) is made with no arguments, in each module its own class; the dataclass
    config comes from its defaults, shrunk; the attention runs and compares."""
    patches, _ = fix_then_verify(tmp_path, capsys, "demands", "cached.py")
    row = _row(patches, "ADP010", "CachedBlock")
    assert row["verdict"] == PASS and "match" in row["reason"], row["reason"]
    assert row["details"]["built"] == "CachedBlock(layer_id=0, config=BlockConfig(d_model=32, n_heads=4), cache=MaskCache())"


def test_a_helper_entered_when_a_stored_string_equals_a_value(tmp_path, capsys):
    """The temporal attention runs in a helper that ``forward`` calls under ``if self.mode ==
    "temporal":``, ``self.mode`` the constructor's string (default "spatial"): the guard's value
    is traced to the constructor argument, and the layer is built again with it, so both patched
    helpers run and compare."""
    patches, _ = fix_then_verify(tmp_path, capsys, "modes", "layers.py")
    rows = [r for r in patches if r["rule"] == "ADP010" and r["class"] == "DualAttention"]
    assert len(rows) == 2 and all(r["verdict"] == PASS and "match" in r["reason"] for r in rows), rows
    assert any("reached with mode='temporal' (constructor)" in r["reason"] for r in rows), rows


def test_an_equality_guard_names_the_value_of_its_side():
    from adopter.verify.branches import guards

    text = ("class A:\n    def forward(self, x, kind='a'):\n        if self.mode == 'b':\n            x = 1\n"
            "        if self.mode != 'c':\n            x = 2\n        else:\n            x = 3\n"
            "        if kind == 'd':\n            x = 4\n        return x\n")
    assert [(g.kind, g.name, g.want) for g in guards(text, {4})] == [("attr_eq", "mode", "b")]
    # the else of `!=` holds one value; its body holds every other value: no value to name
    assert [(g.kind, g.name, g.want) for g in guards(text, {8})] == [("attr_eq", "mode", "c")]
    assert [g.kind for g in guards(text, {6})] == ["other"]
    assert [(g.kind, g.name, g.want) for g in guards(text, {10})] == [("param_eq", "kind", "d")]


def test_grid_sides_passed_as_plain_arguments(tmp_path, capsys):
    """``forward(x, H, W)`` reshapes the tokens to ``(B, C, H, W)``: H and W are the sides of a
    grid of the tokens (their product the token count), tried together; the attention over the
    spatially reduced keys runs and compares."""
    patches, _ = fix_then_verify(tmp_path, capsys, "reduction", "layers.py")
    row = _row(patches, "ADP010", "ReducedAttention")
    assert row["verdict"] == PASS and "match" in row["reason"], row["reason"]
    tokens, h, w = re.fullmatch(r"float\[\d+, (\d+), \d+\], (\d+), (\d+)", row["details"]["inputs"]).groups()
    assert int(h) * int(w) == int(tokens), row["details"]


def test_only_parameters_used_together_as_plain_sizes_are_grid_sides():
    from adopter.verify.inputs import grid_axes

    def forward(self, x, H, W):
        return x.reshape(x.shape[0], -1, H, W)

    def shaped(self, x, hw, W):  # hw read as a sequence: no plain size
        return x.reshape(x.shape[0], -1, hw[0], W)

    def alone(self, x, H, scale):  # one size only
        return x.reshape(x.shape[0], -1, H) * scale

    assert grid_axes(forward) == {"H": (0, 2), "W": (1, 2)}
    assert grid_axes(shaped) == {}
    assert grid_axes(alone) == {}


def test_a_build_change_and_a_forward_argument_steered_together(tmp_path, capsys):
    """The hand-written attention runs only with ``self.export_mode`` set, and its fused path
    only when the forward is told the probabilities are not needed: neither change alone
    reaches the kernel (the flag alone takes the guarded original path), so the build change
    that reached the original path is tried again with each forward-argument change."""
    patches, _ = fix_then_verify(tmp_path, capsys, "steered", "layers.py")
    row = _row(patches, "ADP010", "ExportableAttention")
    assert row["verdict"] == PASS and "match" in row["reason"], row["reason"]
    assert "need_weights=False (forward)" in row["reason"] and "self.export_mode=True" in row["reason"], row


def test_a_package_importing_many_missing_packages(tmp_path, all_rules, quick):
    """super-gradients' ViT: the package's ``__init__`` chain imports fifteen packages verify's
    environment lacks (loggers, ONNX tools, cloud clients), none of which the attention uses.
    Each is stubbed, as one would be (a class that uses one still says "needs X": tested above),
    and the attention verifies."""
    names = [f"adopter_absent_{i}" for i in range(14)]
    assert not any(importlib.util.find_spec(n) for n in names)
    imports = "\n".join(f"import {n}" for n in names)
    path = tmp_path / "many_missing.py"
    path.write_text(f'''import math

import torch
from torch import nn
{imports}


class Attention(nn.Module):
    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)
''')
    rules = [r for r in all_rules if r.id == "ADP010"]
    results = verify_file(str(path), rules, Config(), benchmark=False, options=quick)
    attention = next(r for r in results if r.class_name == "Attention" and not r.combined)
    assert attention.verdict == PASS, attention.reason
    assert sorted(attention.details["not_installed"]) == sorted(names)
    assert not [m for m in sys.modules if m in names]


def test_a_block_its_user_builds_in_forward_is_fed_as_the_user_feeds_it(tmp_path, all_rules, quick):
    """tsai's TST: ``_ScaledDotProductAttention(self.d_k)(q_s, k_s, v_s)`` is built in the
    user's forward, on every call, with k already transposed ([b, h, d, n]): no guessed input
    fits it alone; the user's first forward gives the constructor arguments and the inputs."""
    path = tmp_path / "tst.py"
    path.write_text('''from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class _ScaledDotProductAttention(nn.Module):
    def __init__(self, d_k: int):
        super().__init__()
        self.d_k = d_k

    def forward(self, q, k, v, mask: Optional[torch.Tensor] = None):
        scores = torch.matmul(q, k)
        scores = scores / (self.d_k ** 0.5)
        if mask is not None:
            scores.masked_fill_(mask, -1e9)
        attn = F.softmax(scores, dim=-1)
        context = torch.matmul(attn, v)
        return context


class _MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.n_heads, self.d_k = n_heads, d_model // n_heads
        self.W_Q = nn.Linear(d_model, d_model, bias=False)
        self.W_K = nn.Linear(d_model, d_model, bias=False)
        self.W_V = nn.Linear(d_model, d_model, bias=False)
        self.W_O = nn.Linear(d_model, d_model, bias=False)

    def forward(self, Q):
        bs = Q.size(0)
        q_s = self.W_Q(Q).view(bs, -1, self.n_heads, self.d_k).transpose(1, 2)
        k_s = self.W_K(Q).view(bs, -1, self.n_heads, self.d_k).permute(0, 2, 3, 1)
        v_s = self.W_V(Q).view(bs, -1, self.n_heads, self.d_k).transpose(1, 2)
        context = _ScaledDotProductAttention(self.d_k)(q_s, k_s, v_s)
        context = context.transpose(1, 2).contiguous().view(bs, -1, self.n_heads * self.d_k)
        return self.W_O(context)
''')
    rules = [r for r in all_rules if r.id == "ADP010"]
    results = verify_file(str(path), rules, Config(), benchmark=False, options=quick)
    row = next(r for r in results if r.class_name == "_ScaledDotProductAttention" and not r.combined)
    assert row.verdict == PASS, row.reason
    assert row.details["built"].startswith("_ScaledDotProductAttention(...) as _MultiHeadAttention builds it"), \
        row.details["built"]
    assert row.details["inputs"].count("float[2, 4, ") == 3, row.details["inputs"]  # the heads split off


def test_a_function_that_builds_the_attention_module_is_verified_on_the_module(tmp_path, all_rules, quick):
    """a-unet's ``AttentionBase(features, head_features, num_heads)`` returns ``Module([to_out],
    forward)``, the attention in the closure ``forward``: the module each side's function builds
    is compared, fed as the closure's signature says (q, k, v), after a strict state-dict load."""
    path = tmp_path / "blocks.py"
    path.write_text('''from typing import Callable, Optional, Sequence

import torch
from torch import Tensor, nn


def Module(modules: Sequence[nn.Module], forward_fn: Callable):
    class Module(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList(modules)

        def forward(self, *args, **kwargs):
            return forward_fn(*args, **kwargs)

    return Module()


def AttentionBase(features: int, head_features: int, num_heads: int) -> nn.Module:
    scale = head_features ** -0.5
    to_out = nn.Linear(in_features=head_features * num_heads, out_features=features, bias=False)

    def forward(q: Tensor, k: Tensor, v: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        b, n, _ = q.shape
        q, k, v = (t.view(b, -1, num_heads, head_features).transpose(1, 2) for t in (q, k, v))
        sim = torch.einsum("... n d, ... m d -> ... n m", q, k) * scale
        attn = sim.softmax(dim=-1)
        out = torch.einsum("... n m, ... m d -> ... n d", attn, v)
        out = out.transpose(1, 2).reshape(b, n, num_heads * head_features)
        return to_out(out)

    return Module([to_out], forward)
''')
    rules = [r for r in all_rules if r.id == "ADP010"]
    (row,) = [r for r in verify_file(str(path), rules, Config(), benchmark=False, options=quick) if not r.combined]
    assert row.verdict == PASS, row.reason
    assert row.details["built"].startswith("the module AttentionBase("), row.details["built"]
    assert row.details["inputs"].startswith("float[2, 8, "), row.details["inputs"]


def test_a_branch_taken_when_a_none_default_argument_is_given(tmp_path, all_rules, quick):
    """alphafold3's ``Attend``: ``self.is_local_attn = exists(window_size)`` (``window_size=None``)
    and ``if self.is_local_attn: return self.local_attn(...)``, the patched attention in that
    helper: the build that reaches it gives ``window_size`` a small size."""
    path = tmp_path / "attend.py"
    path.write_text('''import torch
import torch.nn.functional as F
from torch import nn


def exists(v):
    return v is not None


class Attend(nn.Module):
    def __init__(self, dim=32, heads=4, window_size=None):
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, dim * 3)
        self.is_local_attn = exists(window_size)
        self.window_size = window_size

    def local_attn(self, q, k, v):
        b, h, n, d = q.shape
        w = self.window_size
        pad = (w - n % w) % w
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        q, k, v = (t.reshape(b, h, -1, w, d) for t in (q, k, v))
        sim = torch.einsum("... i d, ... j d -> ... i j", q, k) * d ** -0.5
        attn = sim.softmax(dim=-1)
        out = torch.einsum("... i j, ... j d -> ... i d", attn, v)
        return out.reshape(b, h, -1, d)[:, :, :n]

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.to_qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        if self.is_local_attn:
            out = self.local_attn(q, k, v)
        else:
            out = v  # (a global attention here in the original)
        return out.transpose(1, 2).reshape(b, n, c)
''')
    rules = [r for r in all_rules if r.id == "ADP010"]
    (row,) = [r for r in verify_file(str(path), rules, Config(), benchmark=False, options=quick) if not r.combined]
    assert row.verdict == PASS, row.reason
    assert "window_size=4" in row.reason, row.reason


def test_a_function_the_class_calls_is_verified_alone_when_the_class_cannot_be_fed(tmp_path, all_rules, quick):
    """fairseq2's ``NaiveSDPA.forward(q, q_layout, k, k_layout, v, bias_cache)`` reads objects of
    the package's own (``layout.maybe_get()``) that verify cannot make; the patched attention is
    all inside ``naive_scaled_dot_product_attention(q, k, v, bias)``, which is verified alone."""
    path = tmp_path / "naive.py"
    path.write_text('''import torch
from torch import Tensor, nn
from torch.nn.functional import softmax


class NaiveSDPA(nn.Module):
    def forward(self, q: Tensor, q_layout, k: Tensor, k_layout, v: Tensor) -> Tensor:
        bias = q_layout.maybe_get(k_layout)
        return naive_scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), bias)


def naive_scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None) -> Tensor:
    weights = torch.matmul(q, k.transpose(-1, -2))
    weights = weights * (q.size(-1) ** -0.5)
    if bias is not None:
        weights = weights + bias
    weights = softmax(weights, dim=-1)
    return torch.matmul(weights, v)
''')
    rules = [r for r in all_rules if r.id == "ADP010"]
    (row,) = [r for r in verify_file(str(path), rules, Config(), benchmark=False, options=quick) if not r.combined]
    assert row.verdict == PASS, row.reason
    assert "on naive_scaled_dot_product_attention() alone" in row.reason, row.reason
    assert "NaiveSDPA could not be fed here" in row.reason, row.reason


def test_sizes_handed_to_a_tensor_factory_are_widths(tmp_path, capsys):
    """``nn.Parameter(torch.randn(width_in, width_out))``: the arguments are known only as axes
    of the tensor torch's factory makes (a builtin, no signature to read); each is sized as a
    width, so the class is built and its patch verified."""
    patches, _ = fix_then_verify(tmp_path, capsys, "raw_weights", "layers.py")
    row = _row(patches, "ADP010", "MatrixAttention")
    assert row["verdict"] == PASS, row
    assert "width_in=32" in row["details"]["built"] and "width_out=32" in row["details"]["built"]


def test_divisions_init_asserts_hold_after_shrinking_and_masks_that_hide_a_whole_row_are_avoided(tmp_path, capsys):
    """``assert heads % kv_sets == 0`` in ``__init__``: the heads shrunk from the file's own call
    (16 -> 4), the key sets it cannot size by name (8) become the largest common divisor (4), so
    the class is built.  A mask filled where True (``masked_fill(mask, -inf)``): the keep-causal
    candidate hides every key of the last row there (the original's softmax gives NaN, the fused
    call 0: no input to compare on), so the same causal mask in the other polarity is used."""
    patches, _ = fix_then_verify(tmp_path, capsys, "grouped", "blocks.py")
    grouped = _row(patches, "ADP010", "GroupedKeys")
    assert grouped["verdict"] == PASS, grouped
    assert "heads=4" in grouped["details"]["built"] and "kv_sets=4" in grouped["details"]["built"]
    hidden = _row(patches, "ADP010", "HiddenWhereTrue")
    assert hidden["verdict"] == PASS, hidden
    assert "bool[2, 1, 8, 8]" in hidden["details"]["inputs"]


def test_an_argument_only_handed_to_a_helper_is_tried_as_a_small_size(tmp_path, capsys):
    """``self.panel = as_two(panel)``: the argument is only handed on to a function whose
    parameter says nothing of it; a small size is tried (2: a 2 x 2 panel of 4 tokens)."""
    patches, _ = fix_then_verify(tmp_path, capsys, "handed", "layers.py")
    row = _row(patches, "ADP010", "PanelAttention")
    assert row["verdict"] == PASS, row
    assert "panel=2" in row["details"]["built"] and row["details"]["inputs"] == "float[2, 4, 32]"


def test_a_forward_that_hands_its_input_to_a_method_takes_what_the_method_demands(tmp_path, capsys):
    """``forward(x)`` hands ``x`` as it is to ``self._mixed(x)``, which asserts the tokens fill the
    grid of patches it was built for (image 32, patch 8: 4 x 4): the input is sized as the method
    demands (before: no input the original accepts, skip)."""
    patches, _ = fix_then_verify(tmp_path, capsys, "handoff", "layers.py")
    row = _row(patches, "ADP010", "GridMixAttention")
    assert row["verdict"] == PASS, row
    assert row["details"]["inputs"] == "float[2, 16, 32]", row["details"]
    assert 0 < row["max_abs_diff"] < 1e-4, row


def test_only_an_input_handed_on_as_it_is_takes_the_method_s_demands(tmp_path):
    """``handed_method``: the input handed to a method of the module's own before anything rebinds
    it (``x = self._tokens(x)`` too: the call sees the input); near-misses: the input rebound
    first (the method sees another tensor), a loop around, a layer (no method), a function of
    the file."""
    path = tmp_path / "handed_on.py"
    path.write_text('''
import torch
from torch import nn


def helper(x):
    return x


class Handed(nn.Module):
    def _tokens(self, x):
        return x

    def forward(self, x):
        x = self._tokens(x)
        return x


class Rebound(Handed):
    def forward(self, x):
        x = x.flatten(2)
        return self._tokens(x)


class Looped(Handed):
    def forward(self, x):
        for _ in range(2):
            y = self._tokens(x)
        return y


class Layered(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Identity()

    def forward(self, x):
        return helper(self.proj(x))
''')
    spec = importlib.util.spec_from_file_location("handed_on_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from adopter.verify.inputs import handed_method

    handed = module.Handed()
    assert handed_method(handed.forward, handed) == handed._tokens
    for name in ("Rebound", "Looped", "Layered"):
        built = getattr(module, name)()
        assert handed_method(built.forward, built) is None, name


def test_a_pair_of_sides_read_entry_by_entry_and_images_of_the_sides_the_layer_keeps(tmp_path, capsys):
    """``fmap_size[0]``, ``fmap_size[1]``: a pair known only by a name ending in ``_size`` is
    guessed as widths (8, 16) first; its relative-position table serves both axes, so that map
    builds but takes no input, and equal small sides (4, 4) are tried next; the image fed is the
    map the layer keeps (``self.fmap_size``), not the default 32 x 32 (before: skip)."""
    patches, _ = fix_then_verify(tmp_path, capsys, "fmap", "layers.py")
    row = _row(patches, "ADP010", "SquareMapAttention")
    assert row["verdict"] == PASS, row
    assert "fmap_size=(4, 4)" in row["details"]["built"], row["details"]
    assert row["details"]["inputs"] == "float[2, 32, 4, 4]", row["details"]
    assert 0 < row["max_abs_diff"] < 1e-4, row


def test_a_function_of_the_module_verified_alone_with_its_own_flags_and_einsum_ranks(tmp_path, capsys):
    """The layer calls ``attend(q, k, v, causal=self.causal)`` only when built with
    ``written_out=True``, and the patch fuses only the function's causal side (``if clamp or not
    causal: <original> else: <fused>``): one flag at a time never reaches it.  The function is
    verified alone, its ``causal`` parameter steered by the patch's guard, its q, k, v built 4-D as
    its einsum subscripts say (``'b i h d, b j h d -> b h i j'``; before: skip)."""
    patches, _ = fix_then_verify(tmp_path, capsys, "alone", "layers.py")
    row = _row(patches, "ADP010", "SwitchedAttention")
    assert row["verdict"] == PASS, row
    assert "on attend() alone" in row["reason"] and "causal=True" in row["reason"], row["reason"]
    assert row["details"]["inputs"].startswith("float[2, 4, 8, 32], float[2, 4, 8, 32], float[2, 4, 8, 32]")
    assert 0 < row["max_abs_diff"] < 1e-4, row


def test_einsum_subscripts_give_a_rank_only_when_they_agree_and_the_input_is_kept(tmp_path):
    """``einsum_ranks``: q's rank is certain when q is only scaled before its einsum; near-misses:
    an ellipsis (no count), two uses disagreeing, and (for a certain rank) a rebound input."""
    path = tmp_path / "ranks.py"
    path.write_text('''
import torch


def scaled(q, k):
    q = q * 0.5
    return torch.einsum("b i h d, b j h d -> b h i j", q, k)


def ellipsis(q, k):
    return torch.einsum("... i d, ... j d -> ... i j", q, k)


def disagree(q, k):
    a = torch.einsum("b i d, b j d -> b i j", q, k)
    return torch.einsum("b i h d, b j h d -> b h i j", q, k), a


def rebound(q, k):
    q = q.flatten(2)
    return torch.einsum("b i d, b j d -> b i j", q, k)
''')
    spec = importlib.util.spec_from_file_location("ranks_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from adopter.verify.inputs import einsum_ranks, input_rank

    assert einsum_ranks(module.scaled) == {"q": 4, "k": 4} and input_rank(module.scaled) == (4, True)
    assert einsum_ranks(module.ellipsis) == {}
    assert einsum_ranks(module.disagree) == {}
    assert einsum_ranks(module.rebound) == {"k": 3} and einsum_ranks(module.rebound, kept=False) == {"q": 3, "k": 3}
    assert input_rank(module.rebound) == (None, False)


def test_a_function_whose_annotations_name_the_axes_is_fed_at_that_rank(tmp_path, capsys):
    """``q: Axes[torch.Tensor, "batch heads q_len dim"]``: four named axes, and nothing in the
    code states q's rank.  Fed 3-D (before), the 4-D padding
    mask broadcast the original's scores to 4-D, which the fused call refuses: *fail* on an
    input the function is never given; fed 4-D as annotated: pass, with the mask given."""
    patches, _ = fix_then_verify(tmp_path, capsys, "annotated", "layers.py")
    row = _row(patches, "ADP010", "<module>")
    assert row["verdict"] == PASS, row
    assert row["details"]["inputs"].startswith("float[2, 4, 8, 32], float[2, 4, 8, 32], float[2, 4, 8, 32], "
                                               "float[2, 1, 1, 8]"), row["details"]
    assert 0 < row["max_abs_diff"] < 1e-4, row


def test_annotated_ranks_count_the_named_axes(tmp_path):
    """``annotated_ranks``: a subscript annotation whose last item is a string of axis names
    gives their count (variadic ``*batch`` / ``...`` as none, broadcast ``#heads`` and sizes
    counted); near-misses: a string that is not axis names, a plain annotation, none at all."""
    path = tmp_path / "annotated_ranks.py"
    path.write_text('''
from __future__ import annotations


def f(q: Axes[Tensor, "*batch heads q_len dim"], m: Axes[Tensor, "... #heads 1 kv"],
      s: Axes[Tensor, "a sentence, not axes!"], t: Tensor, u, w: Axes[Tensor, "*batch"]):
    return q
''')
    spec = importlib.util.spec_from_file_location("annotated_ranks_fixture", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from adopter.verify.inputs import annotated_ranks, input_rank

    assert annotated_ranks(module.f) == {"q": 3, "m": 3}
    assert input_rank(module.f) == (3, True)


def test_images_as_wide_as_the_convolution_the_input_goes_through_first(tmp_path, capsys):
    """The first convolution the layer registered is an offset network over groups of the
    query's channels (8 wide); the input goes through ``self.to_q(x)`` first (32 wide), so the
    images fed are 32 channels wide (before: 8, 3 or the hinted widths, none accepted: skip)."""
    patches, _ = fix_then_verify(tmp_path, capsys, "offsets", "layers.py")
    row = _row(patches, "ADP010", "ShiftedKeyAttention")
    assert row["verdict"] == PASS, row
    assert row["details"]["inputs"].startswith("float[2, 32, "), row["details"]


def test_a_padding_mask_true_where_a_key_is_hidden(tmp_path, capsys):
    """``masked_fill(pad_mask[:, None, None, :], -inf)``: True hides a key.  The keep-polarity
    ``[batch, seq]`` candidate hides every key of the first sequence there (the original gives
    NaN, the fused call 0, a degenerate input no model is used with), and no other candidate fit
    the mask's indexing, so the check with the mask given compared on it and *failed*; the same
    padding with True where hidden is a candidate now (before: fail)."""
    patches, _ = fix_then_verify(tmp_path, capsys, "padding", "layers.py")
    row = _row(patches, "ADP010", "PaddedAttention")
    assert row["verdict"] == PASS, row
    assert "also with pad_mask given" in row["reason"], row["reason"]
