"""Training throughput and peak memory of the paper's in-depth models, vanilla vs patched.

The paper's Figure 6 trains 9 Hugging Face models (bert, roberta, gpt2, gpt_neo, distilbert, t5,
albert, groupvit, resnet) with and without its patches and reports samples/s and GPU memory.
This script does the same with Adopter's rules, end to end through the real command:

1. For each model it takes the modeling file of the installed ``transformers`` (4.34.0) and a
   small training script (the ``TRAINER`` text below: it builds the AdamW optimizer) and runs
   ``adopter check --output-format json`` on copies of both.  Every rule with a fixable finding
   in either file is benchmarked: no list of rules lives here, so a rule added later (ADP010
   sdpa, ...) is picked up as soon as it finds something.
2. Variants: ``vanilla``, each rule alone (``adopter fix --select RULE``), and ``all`` of them.
   The patched modeling file is imported as a sibling of the original
   (:class:`adopter.verify.loader.ModuleLoader`), so its relative imports resolve as usual.
3. Each variant builds the model class from the same config (random init, no downloads),
   loads the vanilla model's weights (``strict=True``: patches keep checkpoints loadable), and
   trains ``--warmup`` + ``--steps`` steps with the (patched) training script's AdamW on
   synthetic batches.  samples/s = batch / median step time of the timed steps (CUDA events
   on GPU, ``perf_counter`` on CPU); peak memory = ``torch.cuda.max_memory_allocated`` on GPU
   (n/a on CPU: torch's CPU allocator is not tracked per variant).
4. A rule that claims to help training on this device (``helps`` has ``<device>:training``)
   but measured slower than vanilla (below ``1 - --noise``) is flagged ``SLOWER``.

5. ``--compile`` adds a ``compile`` variant: the vanilla model under ``torch.compile``, the
   alternative a user would pick, run after all eager variants (``--compile-dtype``).
   ``--dtype`` takes several dtypes, each run in turn.

    .venv/bin/python benchmarks/train.py --device cpu --size tiny          # what runs here
    python benchmarks/train.py --device cuda --size base --dtype bfloat16,float32 --compile

A lent GPU has no Adopter dependencies and little time: ``--prepare DIR`` writes every model's
patched variants here (the real ``adopter fix``), ``--prepared DIR`` trains them there without
running Adopter, and ``--budget-s`` starts no variant past a time limit (docs/training.md).

Raw results go to ``--json-out`` (one object per model and variant), flat rows
(``model, variant, dtype, samples_per_s, peak_mem_bytes, device, torch``) to ``--rows-out``,
rewritten after every variant so a run cut short keeps what it measured, and a Markdown table
per dtype to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

from adopter.ruleset import load_rules
from adopter.verify.hf import tiny_config
from adopter.verify.loader import ModuleLoader
from adopter.verify.sizes import VERIFY

START = time.perf_counter()  # --budget-s counts from here
MODELS = ("bert", "roberta", "gpt2", "gpt_neo", "distilbert", "t5", "albert", "groupvit", "resnet")
HEADS = {  # the class trained per model: a head with a loss
    "bert": "BertForMaskedLM", "roberta": "RobertaForMaskedLM", "gpt2": "GPT2LMHeadModel",
    "gpt_neo": "GPTNeoForCausalLM", "distilbert": "DistilBertForMaskedLM",
    "t5": "T5ForConditionalGeneration", "albert": "AlbertForMaskedLM", "groupvit": "GroupViTModel",
    "resnet": "ResNetForImageClassification",
}
# Base-size configs where the config class's default is another size (GPT-Neo's is 1.3B,
# T5's is t5-small): the 125M and t5-base shapes.  Others' defaults are base size already.
BASE = {
    "gpt_neo": dict(hidden_size=768, num_layers=12, num_heads=12, attention_types=[[["global", "local"], 6]],
                    max_position_embeddings=2048),
    "t5": dict(d_model=768, d_ff=3072, num_layers=12, num_decoder_layers=12, num_heads=12),
}
TINY = replace(VERIFY, name="train-tiny", batch=4, seq=32, hidden=64, heads=4, ffn=128, layers=2, vocab=256,
               positions=128, embed=32, channels=16, image=32)

TRAINER = '''"""The training side of the benchmark: patched by adopter like the model file."""
import torch


def make_optimizer(model, lr):
    return torch.optim.AdamW(model.parameters(), lr=lr)
'''


def adopter(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "adopter.cli", *args], capture_output=True, text=True)


def modeling_path(model: str) -> Path:
    import transformers

    return Path(transformers.__file__).parent / "models" / model / f"modeling_{model}.py"


def applicable_rules(files: list[Path], target: str | None) -> list[str]:
    args = ["check", "--output-format", "json", "--no-config", *map(str, files)]
    proc = adopter(*args, *(["--target", target] if target else []))
    if proc.returncode not in (0, 1):
        raise SystemExit(f"adopter check failed: {proc.stderr.strip()}")
    return sorted({f["rule"] for f in json.loads(proc.stdout) if f["fixable"]})


def patched_texts(work: Path, originals: dict[str, str], rules: list[str], target: str | None) -> dict[str, str]:
    """``adopter fix --select RULES`` on fresh copies; returns the new text of each file."""
    for name, text in originals.items():
        (work / name).write_text(text, encoding="utf-8")
    if rules:
        args = ["fix", "--no-deps", "--no-config", "--select", ",".join(rules), *(str(work / n) for n in originals)]
        proc = adopter(*args, *(["--target", target] if target else []))
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"adopter fix --select {','.join(rules)} failed: {proc.stderr.strip()}")
    return {name: (work / name).read_text(encoding="utf-8") for name in originals}


def build_config(module, model: str, size: str):
    head = getattr(module, HEADS[model])
    config_cls = head.config_class
    if size == "tiny":
        config = tiny_config(config_cls, TINY)
    else:
        config = config_cls(**BASE.get(model, {}))
    if model == "resnet":
        config.num_labels = 10
    if model == "t5" and getattr(config, "decoder_start_token_id", None) is None:
        config.decoder_start_token_id = config.pad_token_id or 0  # shifts labels right
    return config


def make_batch(model: str, config, batch: int, seq: int, image: int, device: str) -> dict:
    gen = torch.Generator().manual_seed(0)
    if model == "resnet":
        return {"pixel_values": torch.randn(batch, 3, image, image, generator=gen).to(device),
                "labels": torch.randint(0, config.num_labels, (batch,), generator=gen).to(device)}
    if model == "groupvit":
        vision, text = config.vision_config, config.text_config
        return {"input_ids": torch.randint(0, text.vocab_size, (batch, min(seq, text.max_position_embeddings)),
                                           generator=gen).to(device),
                "pixel_values": torch.randn(batch, 3, vision.image_size, vision.image_size, generator=gen).to(device),
                "return_loss": True}
    ids = torch.randint(0, config.vocab_size, (batch, seq), generator=gen).to(device)
    return {"input_ids": ids, "labels": ids}


class Timer:
    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def run(self, step) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1000
        begin = time.perf_counter()
        step()
        return time.perf_counter() - begin


def train_variant(modeling, trainer, model: str, args, state: dict | None, dtype: torch.dtype,
                  compiled: bool = False):
    config = build_config(modeling, model, args.size)
    torch.manual_seed(0)
    # Built on the device itself: random init of a base model is seconds on a CPU and
    # milliseconds on a GPU, and the device time is what a lent GPU is short of.
    with torch.device(args.device):
        net = getattr(modeling, HEADS[model])(config)
    if state is not None:
        net.load_state_dict(state, strict=True)
    state_out = {k: v.detach().clone() for k, v in net.state_dict().items()} if state is None else None
    net.train()
    optimizer = trainer.make_optimizer(net, 1e-4)
    forward = torch.compile(net) if compiled else net
    size = TINY if args.size == "tiny" else None
    batch = make_batch(model, config, args.batch or (size.batch if size else 8), args.seq or (size.seq if size else 128),
                       size.image if size else 224, args.device)
    autocast = torch.autocast(args.device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32)

    def step():
        with autocast:
            loss = forward(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    timer = Timer(args.device)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    begin = time.perf_counter()
    times = [timer.run(step) for _ in range(args.warmup + args.steps)][args.warmup:]
    peak = torch.cuda.max_memory_allocated() if args.device.startswith("cuda") else None
    n = next(iter(v for v in batch.values() if isinstance(v, torch.Tensor))).shape[0]
    result = {"samples_per_s": n / statistics.median(times), "step_s_median": statistics.median(times),
              "step_s": times, "peak_bytes": peak, "batch": n, "wall_s": time.perf_counter() - begin}
    del net, forward, optimizer
    if compiled:
        torch._dynamo.reset()  # the next model compiles from scratch, as a user's would
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return result, state_out


def variant_texts(model: str, target: str | None) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The applicable rules and each variant's files (``{label: {file name: text}}``), made by
    the real ``adopter check`` / ``adopter fix --select`` on copies of the model's modeling file
    and of :data:`TRAINER`."""
    original_path = modeling_path(model)
    originals = {original_path.name: original_path.read_text(encoding="utf-8"), "trainer.py": TRAINER}
    with tempfile.TemporaryDirectory(prefix="adopter-train-") as tmp:
        work = Path(tmp)
        for name, text in originals.items():
            (work / name).write_text(text, encoding="utf-8")
        rules = applicable_rules([work / n for n in originals], target)
        variants = {"vanilla": dict(originals)}
        for label, selected in [(r, [r]) for r in rules] + ([("all", rules)] if len(rules) > 1 else []):
            variants[label] = patched_texts(work, originals, selected, target)
    return rules, variants


def prepare(folder: Path, models: list[str], target: str | None) -> None:
    """Write every model's variants to ``folder`` (``manifest.json`` and the patched files), so
    that a machine without Adopter's dependencies (a lent GPU) only trains: ``--prepared``."""
    manifest = {"target": target, "models": {}}
    for model in models:
        rules, variants = variant_texts(model, target)
        entry = {"rules": rules, "variants": {}}
        for label, texts in variants.items():
            files = {}
            for name, text in texts.items():
                stored = f"{model}/{label}/{name}"
                (folder / stored).parent.mkdir(parents=True, exist_ok=True)
                (folder / stored).write_text(text, encoding="utf-8")
                files[name] = stored
            entry["variants"][label] = files
        manifest["models"][model] = entry
        print(f"{model}: {', '.join(rules) or 'no rule'}", file=sys.stderr)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def load_prepared(folder: Path, model: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["models"][model]
    variants = {label: {name: (folder / stored).read_text(encoding="utf-8") for name, stored in files.items()}
                for label, files in entry["variants"].items()}
    return entry["rules"], variants


def run_model(model: str, args, rules_by_id, out: list, dtype_name: str, compiled_only: bool = False) -> None:
    """Train every variant of ``model`` in ``dtype_name``; with ``compiled_only``, the vanilla
    model under ``torch.compile`` instead (the alternative a user would pick)."""
    original_path = modeling_path(model)
    target = "cuda" if args.device.startswith("cuda") else None
    dtype = getattr(torch, dtype_name)
    rules, texts_of = load_prepared(args.prepared, model) if args.prepared else variant_texts(model, target)
    with tempfile.TemporaryDirectory(prefix="adopter-train-") as tmp, ModuleLoader(str(original_path)) as loader:
        work = Path(tmp)
        # vanilla is timed again last: the gap between the two runs of the same code is the
        # drift of this machine, shown next to the figures and used as the noise floor.
        if compiled_only:
            variants = [("compile", "vanilla", [])]
        else:
            variants = [("vanilla", "vanilla", [])] + [(r, r, [r]) for r in rules]
            variants += [("all", "all", rules)] if len(rules) > 1 else []
            variants.append(("vanilla-again", "vanilla", []))
        state = None
        vanilla = None
        for label, source, selected in variants:
            record = {"model": model, "variant": label, "dtype": dtype_name, "rules": selected}
            if args.budget_s and time.perf_counter() - START > args.budget_s:
                out.append({**record, "error": "not run: the --budget-s time was spent"})
                print(_line(out[-1]), file=sys.stderr, flush=True)
                continue
            texts = texts_of[source]
            modeling = loader.patched(texts[original_path.name], label) if selected else loader.original()
            trainer = loader_trainer(work, texts["trainer.py"], f"{label}_{dtype_name}")
            try:
                result, new_state = train_variant(modeling, trainer, model, args, state, dtype,
                                                  compiled=label == "compile")
            except Exception as exc:  # a variant that does not train is reported, not fatal
                result, new_state = {"error": f"{type(exc).__name__}: {exc}"[:500]}, None
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
            if state is None:
                state = new_state
            record.update(result)
            if label == "vanilla":
                vanilla = result
            elif label == "vanilla-again" and vanilla and "samples_per_s" in result:
                record["speedup"] = result["samples_per_s"] / vanilla["samples_per_s"]
                drift = abs(record["speedup"] - 1)
                for earlier in out:
                    if earlier["model"] == model and earlier.get("dtype") == dtype_name and \
                            earlier.get("flag") == "SLOWER" and earlier["speedup"] >= 1 - max(args.noise, drift):
                        earlier["flag"] = ""  # within this machine's drift: not evidence
                        earlier["note"] = f"slower by less than the vanilla drift ({drift:.1%})"
            elif label == "compile" and "samples_per_s" in result:
                # against the eager vanilla of the same model and dtype (an earlier call's record)
                eager = next((r for r in out if r["model"] == model and r.get("dtype") == dtype_name
                              and r["variant"] == "vanilla" and "samples_per_s" in r), None)
                if eager:
                    record["speedup"] = result["samples_per_s"] / eager["samples_per_s"]
                    if eager.get("peak_bytes") and result.get("peak_bytes"):
                        record["memory_ratio"] = result["peak_bytes"] / eager["peak_bytes"]
            elif vanilla and "samples_per_s" in result and "samples_per_s" in vanilla:
                record["speedup"] = result["samples_per_s"] / vanilla["samples_per_s"]
                if vanilla.get("peak_bytes") and result.get("peak_bytes"):
                    record["memory_ratio"] = result["peak_bytes"] / vanilla["peak_bytes"]
                device = args.device.split(":")[0]
                claims = [r for r in selected if f"{device}:training" in rules_by_id[r].helps]
                record["proposed_here"] = claims
                record["flag"] = "SLOWER" if claims and record["speedup"] < 1 - args.noise else ""
            out.append(record)
            print(_line(record), file=sys.stderr, flush=True)
            if args.rows_out:
                write_rows(args.rows_out, out, args)


def write_rows(path: Path, records: list[dict], args) -> None:
    """The flat rows (``model, variant, dtype, samples_per_s, peak_mem_bytes, device, torch``),
    rewritten whole after every variant (through a temporary file: never half-written), so a
    run stopped by a time limit keeps what it measured.  ``vanilla-again`` goes into its
    vanilla row as ``vanilla_again_samples_per_s``; a compiled run's speed-up is against the
    eager vanilla of the same model and dtype."""
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    rows = []
    for r in records:
        if r["variant"] == "vanilla-again":
            continue
        row = {"model": r["model"], "variant": r["variant"], "dtype": r["dtype"],
               "samples_per_s": r.get("samples_per_s"), "peak_mem_bytes": r.get("peak_bytes"),
               "device": device, "torch": torch.__version__, "rules": r.get("rules", [])}
        for key in ("speedup", "memory_ratio", "flag", "note", "error", "step_s_median", "wall_s", "batch"):
            if r.get(key) not in (None, ""):
                row[key] = r[key]
        if r["variant"] == "vanilla":
            again = next((a for a in records if a["model"] == r["model"] and a["dtype"] == r["dtype"]
                          and a["variant"] == "vanilla-again" and "samples_per_s" in a), None)
            if again:
                row["vanilla_again_samples_per_s"] = again["samples_per_s"]
        rows.append(row)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def loader_trainer(work: Path, text: str, label: str):
    import importlib.util

    path = work / f"trainer_{label.replace('-', '_')}.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"_adopter_train_{label.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _line(r: dict) -> str:
    head = f"{r['model']:<11} {r.get('dtype', ''):<9} {r['variant']:<13}"
    if "error" in r:
        return f"{head} error: {r['error']}"
    extra = f"  x{r['speedup']:.3f}" if "speedup" in r else ""
    mem = f"  {r['peak_bytes'] / 2**20:.0f} MiB" if r.get("peak_bytes") else ""
    return f"{head} {r['samples_per_s']:9.2f} samples/s{mem}{extra} {r.get('flag', '')}"


def table(records: list[dict]) -> str:
    rows = ["| model | variant | samples/s | vs vanilla | peak memory | vs vanilla | flag |", "|---|---|---|---|---|---|---|"]
    for r in records:
        if "error" in r:
            rows.append(f"| {r['model']} | {r['variant']} | error: {r['error'][:80]} | | | | |")
            continue
        speedup, ratio = r.get("speedup"), r.get("memory_ratio")
        mem = f"{r['peak_bytes'] / 2**20:.0f} MiB" if r.get("peak_bytes") else "n/a"
        speed = f"{speedup:.3f}x" if speedup else ""
        ratio_text = f"{ratio:.3f}x" if ratio else ""
        rows.append(f"| {r['model']} | {r['variant']} | {r['samples_per_s']:.2f} | {speed} | {mem} | {ratio_text} | "
                    f"{r.get('flag', '')} |")
    alls = [r for r in records if r.get("variant") == "all" and "speedup" in r]
    singles = {r["model"]: r for r in records
               if r.get("variant") not in ("vanilla", "all", "vanilla-again", "compile") and "speedup" in r}
    per_model = alls + [r for m, r in singles.items() if m not in {a["model"] for a in alls}]
    if per_model:
        mean = statistics.mean(r["speedup"] for r in per_model)
        rows.append("")
        rows.append(f"Mean over {len(per_model)} models of all-rules samples/s vs vanilla: {mean:.3f}x "
                    f"({(mean - 1) * 100:+.1f}%; paper, T4 GPU: +22.7% samples/s, -10.5% memory).")
        memory = [r["memory_ratio"] for r in per_model if r.get("memory_ratio")]
        if memory:
            rows.append(f"Mean peak memory of all rules vs vanilla: {statistics.mean(memory):.3f}x "
                        f"({(statistics.mean(memory) - 1) * 100:+.1f}%).")
    compiled = [r["speedup"] for r in records if r.get("variant") == "compile" and "speedup" in r]
    if compiled:
        rows.append(f"Mean over {len(compiled)} models of torch.compile(vanilla) vs eager vanilla: "
                    f"{statistics.mean(compiled):.3f}x.")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/train.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", choices=("tiny", "base"), default=None,
                        help="model size (default: base on CUDA, tiny on CPU)")
    parser.add_argument("--dtype", default="float32",
                        help="autocast dtypes, comma-separated, each run in turn: float32 (no autocast), "
                             "float16, bfloat16")
    parser.add_argument("--compile", action="store_true",
                        help="also train the vanilla model under torch.compile (after all eager runs)")
    parser.add_argument("--compile-dtype", default="",
                        help="the dtypes of the compiled runs (default: the first of --dtype)")
    parser.add_argument("--batch", type=int, default=0, help="batch size (default: 8 base, 4 tiny)")
    parser.add_argument("--seq", type=int, default=0, help="sequence length (default: 128 base, 32 tiny)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (median taken)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--noise", type=float, default=0.03, help="slower than 1-NOISE of vanilla is flagged")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--rows-out", type=Path,
                        help="flat rows (model, variant, dtype, samples_per_s, peak_mem_bytes, device, torch), "
                             "rewritten after every variant")
    parser.add_argument("--prepare", type=Path, metavar="DIR",
                        help="only write every model's patched variants to DIR (for --prepared elsewhere)")
    parser.add_argument("--prepared", type=Path, metavar="DIR",
                        help="train the variants --prepare wrote, without running adopter here")
    parser.add_argument("--budget-s", type=float, default=0,
                        help="start no variant after this many seconds (the rest are listed as not run)")
    args = parser.parse_args(argv)
    args.size = args.size or ("base" if args.device.startswith("cuda") else "tiny")
    dtypes = [d.strip() for d in args.dtype.split(",") if d.strip()]
    compile_dtypes = [d.strip() for d in (args.compile_dtype or dtypes[0]).split(",") if d.strip()]
    for name in dtypes + compile_dtypes:
        if name not in ("float32", "float16", "bfloat16"):
            parser.error(f"--dtype: {name!r} is not one of float32, float16, bfloat16")
    models = args.models.split(",")
    if unknown := [m for m in models if m not in MODELS]:
        parser.error(f"--models: unknown {', '.join(unknown)} (known: {', '.join(MODELS)})")
    if args.prepare:
        args.prepare.mkdir(parents=True, exist_ok=True)
        prepare(args.prepare, models, "cuda" if args.device.startswith("cuda") else None)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    rules_by_id = {r.id: r for r in load_rules()}
    records: list[dict] = []
    for dtype_name in dtypes:
        for model in models:
            run_model(model, args, rules_by_id, records, dtype_name)
    if args.compile:
        for dtype_name in compile_dtypes:
            for model in models:
                run_model(model, args, rules_by_id, records, dtype_name, compiled_only=True)
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    size = TINY if args.size == "tiny" else None
    meta = {
        "device": args.device, "device_name": device_name, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "dtype": dtypes, "size": args.size,
        "batch": args.batch or (size.batch if size else 8), "seq": args.seq or (size.seq if size else 128),
        "image": size.image if size else 224, "steps": args.steps, "warmup": args.warmup,
        "load_average": os.getloadavg(),
    }
    if args.json_out:
        args.json_out.write_text(json.dumps({"meta": meta, "results": records}, indent=1) + "\n", encoding="utf-8")
    if args.rows_out:
        write_rows(args.rows_out, records, args)
    print(f"device {meta['device']} ({meta['device_name']}), torch {meta['torch']}, {meta['threads']} threads, "
          f"size {meta['size']}, batch {meta['batch']}, seq {meta['seq']}, "
          f"image {meta['image']}, {meta['warmup']} warm-up + {meta['steps']} timed steps\n")
    for dtype_name in dict.fromkeys(dtypes + (compile_dtypes if args.compile else [])):
        print(f"### {dtype_name}\n")
        print(table([r for r in records if r.get("dtype") == dtype_name]))
        print()
    flagged = [r for r in records if r.get("flag")]
    if flagged:
        print("\nSLOWER: rules that claim to help training here but measured slower: "
              + ", ".join(f"{r['model']}/{r['variant']}/{r['dtype']} ({r['speedup']:.3f}x)" for r in flagged))
    return 0


if __name__ == "__main__":
    sys.exit(main())
