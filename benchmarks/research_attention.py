#!/usr/bin/env python
"""Research attention (issue 12): of the development corpus's labelled ADP010 sites outside
transformers (research-style fixtures, vit-pytorch, segment-anything, open_clip, torchvision,
litgpt, timm), how many are found (a finding paired with the site, one to one, as the dev
corpus's scorer pairs them), fixed (``fix_text`` applies the patch of that very finding: a site
that merely lies inside another site's patch, its own finding declined, is not fixed), and verified (``adopter verify --select ADP010``: the site's class passes; how
many of those passes are forward only, their original unable to take a training step, is said beside it),
and how many of the sites labelled "no" (or "skip") are reported (paired with a finding as the
dev corpus's scorer pairs them; how many lie inside a finding's span is printed beside it);
summed over every source outside transformers, then over the research repositories alone (timm
and torchvision left out too).

Verify needs what the files' classes use installed where it runs.  For this benchmark, packages
the sources use that the project's environment lacks go in a folder of their own on
``PYTHONPATH`` (never in the project's dependencies): einops_exts and mmengine (imported by
research files), pillow (PIL, imported by ultralytics), fairscale (llama-models' parallel
Linears), mmcv-lite (mmpretrain's layers), cached_path (imported by ai2-olmo's ``util``, which its
model module imports; its own dependencies are stubbed) and a huggingface_hub that diffusers 0.35
accepts and the project's transformers 4.34 still does (0.34.x); fairscale's source distribution also installs a
top-level ``benchmarks`` package, removed so it cannot shadow this folder::

    .venv/bin/pip install --no-deps --no-build-isolation --target /tmp/extra einops_exts mmengine addict termcolor yapf \
        pillow fairscale mmcv-lite cached_path "huggingface_hub==0.34.4" && rm -rf /tmp/extra/benchmarks
    .venv/bin/pip install --no-deps --no-build-isolation --target /tmp/corpus8r-extra rotary-embedding-torch mmsegmentation
    .venv/bin/pip install --no-deps --no-build-isolation --target /tmp/corpus9a-extra coqui-tts pytorch-lightning \
        lightning-utilities torchmetrics

verify12 (session 14) adds a fourth folder, the packages research modules import when loaded
(each attention class under test runs without calling them, except fastai's, whose layers are
fastai's own): alphafold3-pytorch's ``tensor_typing`` (environs and its marshmallow and dotenv,
biopython, sh, loguru, jaxtyping and wadler-lindig, beartype), fastai's ``imports`` (pandas and
its dateutil, pytz and tzdata; matplotlib and its contourpy, cycler, kiwisolver, pyparsing,
fonttools; scipy; fastcore, fastprogress 1.0.3 (later ones import fasthtml), fastdownload,
fasttransform, plum-dispatch), fastai itself (tsai's models star-import it) and timm
(segmentation-models-pytorch's MiT encoder); verify17 (session 17) adds catalogue to it (llm-foundry's
registry module, imported by its attention module)::

    .venv/bin/pip install --no-deps --no-build-isolation --target /tmp/verify12-extra environs marshmallow \
        python-dotenv biopython sh loguru jaxtyping wadler-lindig beartype pandas python-dateutil pytz tzdata timm \
        matplotlib contourpy cycler kiwisolver pyparsing fonttools scipy fastcore "fastprogress==1.0.3" \
        fastdownload fasttransform plum-dispatch "fastai==2.8.4" catalogue
rafix39 (session 29) adds a fifth folder: pyllama's ``llama/model_single.py`` imports ``hiq`` when
loaded (PyPI's ``hiq-python``, which pyllama requires; its ``get_env_bool`` picks the KV cache's
device) and hiq's own imports: py-itree (its wheel also installs a top-level ``tests``
folder, removed), cachetools and psutil (PyYAML, urllib3, requests and rich are in the
environment already)::

    .venv/bin/pip install --no-deps --no-build-isolation --target /tmp/rafix39-extra "hiq-python==1.1.14" \
        py-itree cachetools psutil && rm -rf /tmp/rafix39-extra/tests

rafix42 (session 30) adds a sixth folder: rlt-pytorch's ``RLT.py`` imports ``torch_einops_utils`` when
loaded (lucidrains' helpers; its attention class runs without calling them)::

    .venv/bin/pip install --no-deps --no-build-isolation --target /tmp/rafix42-extra torch-einops-utils

rafix48 (session 32) adds a seventh folder: native-sparse-attention-pytorch's module imports
``local_attention`` when loaded, and local-attention imports ``hyper_connections`` (lucidrains'
packages; its SparseAttention's own attention runs without calling them)::

    .venv/bin/pip install --no-deps --no-build-isolation --target /tmp/rafix48-extra local-attention hyper-connections

Session 34 adds an eighth folder: neuraloperator's CODA layer imports ``tensorly`` and
``tltorch`` (tensorly-torch) when loaded, which use scipy and opt_einsum (research59), and
rxngraphormer's ``utils`` imports ``rdkit`` (the lead)::

    .venv/bin/pip install --no-deps --no-build-isolation --target /tmp/s34-extra tensorly tensorly-torch \
        scipy opt_einsum rdkit

verify7 (session 36) adds a ninth folder: texar-pytorch's modules import ``asyml_utilities`` when
loaded (PyPI's ``asyml-utilities``, which texar-pytorch requires; without it texar's sites are an
honest skip, "needs asyml_utilities")::

    .venv/bin/pip install --no-deps --no-build-isolation --target /tmp/verify7-extra "asyml-utilities==0.0.2"

fixver53 (session 43) writes down a tenth folder: jjuke-diffusion's U-Net modules import the author's
``jjuke`` package (0.7.5, whose ``utils`` they import; research103 installed it with easydict,
omegaconf and antlr4-python3-runtime 4.9.3, plus an empty ``wandb`` stub that jjuke imports when
loaded), and cacheshrink's compression module imports ``geoopt`` when loaded (its MLA attention's
``MLACompression`` builds geoopt's Stiefel parameters)::

    .venv/bin/pip install --no-deps --no-build-isolation --target /tmp/fixver53-extra "jjuke==0.0.7.5" easydict \
        omegaconf "antlr4-python3-runtime==4.9.3" geoopt && mkdir -p /tmp/fixver53-extra/wandb \
        && touch /tmp/fixver53-extra/wandb/__init__.py

    PYTHONPATH=/tmp/extra:/tmp/corpus8r-extra:/tmp/corpus9a-extra:/tmp/verify12-extra:/tmp/rafix39-extra:/tmp/rafix42-extra:/tmp/rafix48-extra:/tmp/s34-extra:/tmp/verify7-extra:/tmp/fixver53-extra \
        .venv/bin/python benchmarks/research_attention.py [--only SOURCE]

The sources are fetched as ``benchmarks/devcorpus/score.py`` fetches them (its cache).

Three sources need another transformers than the environment's 4.34, so their folders shadow it and
go only on a run of their own, never on the composed path (research104, session 42): FlagEmbedding's
MiniCPM reranker imports ``transformers.cache_utils`` and ``is_flash_attn_greater_or_equal_2_10``
(4.36+), mixture-of-depth's ``LlamaMoD`` imports 4.41+ helpers (research99; fixver53 ran it on the
same folder), and multimolecule's modules import transformers 5's ``initialization`` and
``output_capturing`` (its other requirements, datasets among them, are stubbed)::

    .venv/bin/pip install --no-deps --target /tmp/research104-extra "transformers==4.45.2" "tokenizers==0.20.3"
    .venv/bin/pip install --no-deps --target /tmp/research104-extra5 "transformers==5.23.0" \
        "huggingface_hub==1.31.0" "tokenizers==0.23.3" "safetensors==0.8.0" regex typer shellingham \
        danling chanfig httpx httpcore h11 anyio sniffio hf-xet typing-extensions
    PYTHONPATH=/tmp/research104-extra:... .venv/bin/python benchmarks/research_attention.py --only flagembedding==
    PYTHONPATH=/tmp/research104-extra:... .venv/bin/python benchmarks/research_attention.py --only mixture-of-depth==
    PYTHONPATH=/tmp/research104-extra5:... .venv/bin/python benchmarks/research_attention.py --only multimolecule==

Since session 19 (fix19a) a file is fixed as ``adopter fix`` over its package fixes it: with the
run of every ``.py`` file of its top-level package folder (``adopter.synth.run``), so that an
attention whose callers are in another file of the package counts as fixed; verify gets the
package folder as ``--context``.  Sites whose callers are in their own file count as before.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "devcorpus"))

import score  # noqa: E402

from adopter.engine import AnalysisError, analyze  # noqa: E402
from adopter.ruleset import load_rules  # noqa: E402
from adopter.structure.names import package_of  # noqa: E402
from adopter.synth import fix_text  # noqa: E402
from adopter.synth.core import code_of  # noqa: E402  (public: the same line matching as synth)
from adopter.synth.run import Run  # noqa: E402


LIBRARIES = ("timm==", "torchvision==")  # libraries, not research repositories (the second summary)


def _covers(findings, line: int) -> bool:
    return any(f.line <= line <= (f.end_line or f.line) for f in findings)


def pair_sites(labs, found, result) -> tuple[dict, set]:
    """The finding of each labelled site, and the sites fixed.  Each site gets the finding the
    dev corpus's scorer pairs with it (``score.match_file``: one to one, a finding taking the
    best label whose anchor lies in its span, nearest its start), and is fixed when ``fix_text``
    applied that finding's patch: an applied finding of its rule starting at the finding's first
    line of the input text (``FixResult.origins`` places a later round's findings there).  A site inside another finding's patch whose own finding was declined is not fixed
    (sssegmentation's non-local block: the ``gaussian`` helper's patch spans the default
    ``embeddedgaussian`` helper's site, which keeps its original path)."""
    pairs = {id(lab): finding for lab, finding in score.match_file(labs, found).matched}
    done = {(f.rule, line) for f, line in zip(result.applied, result.origins) if line is not None}
    fixed = {key for key, f in pairs.items() if (f.rule, f.line) in done}
    return pairs, fixed


def declined_like(text: str, result, finding) -> list[str]:
    """The reasons of the declines of ``finding`` (placed in the fixed text): those starting at
    its first line, where the rewrites left that line as it was; else those whose first line has
    its code (indentation and a trailing comment aside), where no other line of ``text`` has it:
    a site whose lines another site's patch rewrote (slp's symmetric attention, both attentions
    in one region) still shows why its own finding was declined."""
    at = final_line(text, result.text, finding.line)
    if at is not None:
        return [w for f, w in result.skipped if f.rule == finding.rule and f.line == at]
    old, new = text.splitlines(), result.text.splitlines()
    want = code_of(old[finding.line - 1]) if finding.line <= len(old) else ""
    if not want or sum(code_of(line) == want for line in old) != 1:
        return []
    return [w for f, w in result.skipped
            if f.rule == finding.rule and f.line <= len(new) and code_of(new[f.line - 1]) == want]


def _package_root(path: Path) -> Path | None:
    """The top folder of the package ``path`` lies in (None outside a package)."""
    package = package_of(str(path))
    if package is None:
        return None
    root = path.parent
    for _ in range(package.count(".")):
        root = root.parent
    return root


def _verify(path: Path, root: Path | None, unsafe_fixes: bool = False) -> dict:
    cmd = [sys.executable, "-m", "adopter.cli", "verify", "--select", "ADP010", "--no-benchmark", "--no-config",
           "--output-format", "json", str(path)] + (["--unsafe-fixes"] if unsafe_fixes else [])
    if root is not None:
        cmd += ["--context", str(root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return {"error": proc.stderr.strip()[-300:]}


def _verdict_of(results: list[dict], applied, line: int) -> dict | None:
    """The verify result of the labelled line: of the ADP010 results on a line the applied
    finding around it spans (verify names a site by its first operation's line, which may lie
    after the finding's first line and after the anchor: EDM's ``w = (`` then ``torch.einsum(``),
    the last at or before the anchor, else the first; without such a result, the last result at
    or before the anchor (as before)."""
    ours = [r for r in results if r.get("rule") == "ADP010"]
    spans = [f for f in applied if f.line <= line <= (f.end_line or f.line)]
    inside = [r for r in ours if any(f.line <= r["line"] <= (f.end_line or f.line) for f in spans)]
    before = [r for r in (inside or ours) if r["line"] <= line]
    if before:
        return max(before, key=lambda r: r["line"])
    return min(inside, key=lambda r: r["line"]) if inside else None


def final_line(old: str, new: str, line: int) -> int | None:
    """The line of ``new`` that is line ``line`` of ``old`` (1-based), where that line lies in a
    run of lines the rewrite left as they were; None where it changed."""
    import difflib

    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    for tag, a0, a1, b0, _ in matcher.get_opcodes():
        if tag == "equal" and a0 < line <= a1:
            return b0 + line - a0
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="only the files whose 'source:path' contains TEXT (repeatable; any matches)")
    parser.add_argument("--unsafe-fixes", action="store_true",
                        help="fix (and verify) as `adopter fix --unsafe-fixes` does: the figures with the unsafe "
                             "fixes (default: the safe ones)")
    args = parser.parse_args(argv)
    labels = [lab for lab in score.read_labels(HERE / "devcorpus" / "labels.tsv")
              if lab.rule == "ADP010" and not lab.source.startswith("transformers==")
              and (not args.only or any(t in f"{lab.source}:{lab.path}" for t in args.only))]
    files = score.resolve_files(labels, score.DEFAULT_CACHE, quiet=True)
    rules = [r for r in load_rules() if r.id == "ADP010"]
    by_file = defaultdict(list)
    for lab in labels:
        by_file[(lab.source, lab.path)].append(lab)
    tally: Counter = Counter()
    research: Counter = Counter()  # outside torchvision and timm too: the research repositories
    for key, labs in sorted(by_file.items()):
        path = files[key]
        counters = [tally] if key[0].startswith(LIBRARIES) else [tally, research]

        def count(name: str, value: int = 1) -> None:
            for counter in counters:
                counter[name] += value

        text = path.read_text(encoding="utf-8")
        try:
            found = analyze(text, str(path), rules, package_of(str(path))).findings
        except AnalysisError as exc:
            # a file this Python cannot parse (nanollama's 3.12 f-strings): its yes sites are
            # not found, its no sites not reported; the run goes on to the other files
            for lab in labs:
                count("yes" if lab.label == "yes" else "no")
                status = "not found" if lab.label == "yes" else f"{lab.label} site not reported"
                print(f"{lab.source}:{lab.path}:{lab.line}: {status} (not analysable: {exc})")
            continue
        # fixed as `adopter fix` over the file's package fixes it (fix19a): an attention whose
        # callers are in other files of the package is patched with them (synth/run.py)
        root = _package_root(path)
        run = Run.of_paths(sorted(str(p) for p in root.rglob("*.py")) if root is not None else [str(path)])
        run.unsafe_fixes = args.unsafe_fixes
        result = fix_text(text, str(path), rules, package_of(str(path)), run=run)
        verified = _verify(path, root, args.unsafe_fixes) if result.applied else {}
        # A "no" (or "skip") site is reported when a finding is the one the dev corpus's scorer
        # pairs with it (score.match_file: a finding spanning a "yes" site and a "no" one --
        # perceiver's two softmaxes in one if/else, one finding -- is the "yes" site's).
        pairs, fixed_sites = pair_sites(labs, found, result)
        paired = set(pairs)
        for lab in labs:
            if lab.label != "yes":
                count("no")
                count("no reported", id(lab) in paired)
                count("no spanned", _covers(found, lab.line))
                if id(lab) in paired:
                    print(f"{lab.source}:{lab.path}:{lab.line}: {lab.label} site reported")
                continue
            count("yes")
            count("found", id(lab) in pairs)
            fixed = id(lab) in fixed_sites
            count("fixed", fixed)
            status = "not fixed"
            if id(lab) not in pairs:
                # detection's miss: no finding of its own, so nothing to fix or decline (one
                # inside another site's finding is said so)
                status = "not found" + (" (inside another site's finding)" if _covers(found, lab.line) else "")
            elif fixed:
                run = _verdict_of(verified.get("results", []), [pairs[id(lab)]], lab.line)
                status = f"{run['verdict']} ({run['class']}: {run['reason'][:140]})" if run else str(verified)[:200]
                count("verified", bool(run and run["verdict"] == "pass"))
                # a pass whose original alone cannot train, or whose original and patched module
                # fail their training step alike at a line the patch keeps (lead rulings, session
                # 37): counted as verified, and how many of them are said beside the total
                count("forward only", bool(run and run["verdict"] == "pass"
                                           and (run.get("details") or {}).get("forward_only")))
            else:
                # a decline of a later round is placed in that round's text (the rewrites of the
                # earlier rounds moved it): the site's line there, where its lines are unchanged
                moved = final_line(text, result.text, lab.line)
                why = [w for f, w in result.skipped if _covers([f], lab.line if moved is None else moved)]
                if not why:
                    # its lines rewritten (a patch of another site around them): the decline whose
                    # first line reads as the site's finding's first line does
                    why = declined_like(text, result, pairs[id(lab)])
                status += f" ({why[0]})" if why else " (no reason given)"
            print(f"{lab.source}:{lab.path}:{lab.line}: {status}")
    for name, counter in (("all sources outside transformers", tally),
                          ("research (outside transformers, timm, torchvision)", research)):
        print(f"{name}: yes sites {counter['yes']}: found {counter['found']}, fixed {counter['fixed']}, "
              f"fixed and verified {counter['verified']} ({counter['forward only']} forward only: the original "
              f"cannot train, or neither does, alike at a line the patch keeps); no sites {counter['no']}: reported {counter['no reported']} "
              f"(inside a finding's span: {counter['no spanned']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
