#!/usr/bin/env python
"""Per-rule benchmark: the module ``adopter fix`` writes against the original, in every mode the
rule claims on the device (``helps``), so that a rule is on by default only where it pays.

For each rule with a fix, a source (the rule's first before-example, or a case below with
realistic sizes) is rewritten by the real ``fix_text`` with that rule alone; the original and
the patched class are imported from files, built with the same arguments, given the same
state dict (strict), and timed:

- ``inference``: forward under ``torch.no_grad()`` in eval mode;
- ``training``: forward + backward of the outputs' sum in train mode (optimizer rules: whole
  training steps), plus peak memory on CUDA.

Each measurement is ``--pairs`` (>= 7) interleaved A/B pairs - original then patched, then
patched then original, alternately, each side a ``torch.utils.benchmark`` timing of the same
number of runs - so that machine load hits both alike. Reported: the median ratio
original/patched (above 1: the patch is faster) with its spread (min-max over the pairs), and
a drift flag when the original's median time in the last third of the pairs differs by more
than 10% from the first third (a loaded machine; rerun). Rules whose patched code runs only
elsewhere (Liger on CUDA) are listed as not measured on this hardware.

    python benchmarks/rules.py                     # CPU, sizes as below
    python benchmarks/rules.py --quick             # small sizes, seconds (smoke test)
    python benchmarks/rules.py --device cuda       # the CUDA path (peak memory too)
    python benchmarks/rules.py --json-out out.json --select ADP007,ADP011
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import platform
import statistics
import sys
import tempfile
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn
from torch.utils import benchmark

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adopter.ruleset import Rule, load_rules  # noqa: E402
from adopter.synth import fix_text  # noqa: E402


def _cfg(**kw):
    return types.SimpleNamespace(**kw)


QKV_SOURCE = '''
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)

    def forward(self, hidden_states):
        query = self.q_proj(hidden_states)
        key = self.k_proj(hidden_states)
        value = self.v_proj(hidden_states)
        query = self._split_heads(query)
        key = self._split_heads(key)
        value = self._split_heads(value)
        return query @ key.transpose(-1, -2) @ value

    def _split_heads(self, x):
        return x.view(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)
'''

OPTIMIZER_SOURCE = '''
import torch


def train(model, batches):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    for inputs in batches:
        loss = model(inputs).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
'''


@dataclass
class Case:
    """What to build for one rule: ``source`` (None: the first before-example), the class, its
    arguments and inputs at full and at --quick size."""

    cls: str
    args: tuple
    inputs: Callable[[bool], tuple]
    source: Optional[str] = None
    transformers: Optional[tuple] = None  # (module, class, factory name): a real transformers class
    function: Optional[str] = None  # a training function (optimizer rules) instead of a class


def _r(*shape):
    return lambda: torch.randn(*shape)


CASES: dict[str, Case] = {
    "ADP001": Case("BertSelfAttention", (), lambda q: (torch.randn(4, 64 if q else 256, 768),),
                   transformers=("transformers.models.bert.modeling_bert", "BertSelfAttention",
                                 "sdpa_bert_self_attention")),
    "ADP003": Case("GPT2Attention", (), lambda q: (torch.randn(4, 64 if q else 256, 768),),
                   transformers=("transformers.models.gpt2.modeling_gpt2", "GPT2Attention", "sdpa_gpt2_attention")),
    "ADP002": Case("T5Attention", (), lambda q: (torch.randn(4, 64 if q else 256, 768),),
                   transformers=("transformers.models.t5.modeling_t5", "T5Attention", "sdpa_t5_attention")),
    "ADP004": Case("Attention", (), lambda q: (torch.randn(8, 12, 64 if q else 256, 64 if q else 256),)),
    "ADP005": Case("SelfOutput", (768,), lambda q: (torch.randn(8, 64 if q else 256, 768),
                                                    torch.randn(8, 64 if q else 256, 768))),
    "ADP006": Case("Block", (_cfg(hidden_act="gelu_new"), 768), lambda q: (torch.randn(8, 64 if q else 256, 768),)),
    "ADP007": Case("Block", (64,), lambda q: (torch.randn(8, 64, 28 if q else 56, 28 if q else 56),)),
    "ADP008": Case("Block", (1024,), lambda q: (torch.randn(64 if q else 512, 1024),)),
    "ADP009": Case("Attention", (768, 12), lambda q: (torch.randn(8, 64 if q else 256, 768),), source=QKV_SOURCE),
    "ADP010": Case("SelfAttention", (768, 12), lambda q: tuple(torch.randn(8, 12, 64 if q else 256, 64)
                                                               for _ in range(3))),
    "ADP011": Case("RMSNorm", (2048,), lambda q: (torch.randn(8, 64 if q else 256, 2048),)),
    "ADP012": Case("", (), lambda q: (), source=OPTIMIZER_SOURCE, function="train"),
}


def _import(text: str, folder: Path, counter=itertools.count()):
    name = f"adopter_rules_bench_{next(counter)}"
    path = folder / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Row:
    rule: str
    mode: str
    device: str
    shapes: str
    pairs: int = 0
    original_ms: float = float("nan")
    patched_ms: float = float("nan")
    ratio: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")
    drift: bool = False
    peak_mb: tuple = ()
    note: str = ""
    ratios: list = field(default_factory=list)


def _pairs(fn_a: Callable, fn_b: Callable, pairs: int, device: str) -> tuple[list[float], list[float]]:
    """Interleaved A/B timings (seconds per run): A B, B A, A B, ..."""
    timers = [benchmark.Timer("f()", globals={"f": f}) for f in (fn_a, fn_b)]
    fn_a(), fn_b()  # warm-up (lazy init, caches)
    number = max(1, int(0.2 / max(timers[0].timeit(1).mean, 1e-6)))  # ~0.2 s per side and pair
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(pairs):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for side in order:
            times[side].append(timers[side].timeit(number).mean)
    return times


def _peak(fn: Callable, device: str) -> float:
    if device != "cuda":
        return float("nan")
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() / 2**20


def _row(rule: str, mode: str, device: str, shapes: str, fn_a, fn_b, pairs: int) -> Row:
    a, b = _pairs(fn_a, fn_b, pairs, device)
    ratios = sorted(x / y for x, y in zip(a, b))
    third = max(1, pairs // 3)
    first, last = statistics.median(a[:third]), statistics.median(a[-third:])
    return Row(rule, mode, device, shapes, pairs, statistics.median(a) * 1e3, statistics.median(b) * 1e3,
               statistics.median(ratios), ratios[0], ratios[-1], abs(last / first - 1) > 0.10,
               (_peak(fn_a, device), _peak(fn_b, device)) if mode == "training" else (), ratios=ratios)


def _modules(rule: Rule, case: Case, folder: Path, quick: bool, device: str):
    """(original, patched) modules built alike, or a reason why not."""
    if case.transformers is not None:
        try:
            module = importlib.import_module(case.transformers[0])
            import adopter_kernels
            import transformers
        except ImportError as exc:
            return None, f"needs {exc.name}"
        config = {"ADP001": lambda: transformers.BertConfig(hidden_size=768, num_attention_heads=12),
                  "ADP003": lambda: transformers.GPT2Config(n_embd=768, n_head=12),
                  "ADP002": lambda: transformers.T5Config(d_model=768, d_kv=64, num_heads=12)}[rule.id]()
        cls = getattr(module, case.transformers[1])
        factory = getattr(adopter_kernels, case.transformers[2])
        args = (config, True) if rule.id == "ADP002" else (config,)
        return (cls, factory(cls), args), ""
    source = case.source or next(e.before for e in rule.examples if e.after is not None)
    result = fix_text(source, "bench.py", [rule])
    if not result.applied:
        return None, "the fix does not apply to the benchmark source"
    original, patched = _import(source, folder), _import(result.text, folder)
    if case.function:
        return (getattr(original, case.function), getattr(patched, case.function), ()), ""
    return (getattr(original, case.cls), getattr(patched, case.cls), case.args), ""


def measure(rule: Rule, case: Optional[Case], device: str, quick: bool, pairs: int, folder: Path) -> list[Row]:
    modes = [h.split(":")[1] for h in rule.helps if h.split(":")[0] == device]
    if rule.only_on and device not in rule.only_on:
        return [Row(rule.id, "/".join(modes) or "-", device, "", note=f"not measured on its hardware "
                    f"(runs on {'/'.join(rule.only_on)} only)")]
    if not modes:
        return [Row(rule.id, "-", device, "", note=f"claims no gain on {device} (helps: {', '.join(rule.helps) or 'none'})")]
    built, why = _modules(rule, case, folder, quick, device)
    if built is None:
        return [Row(rule.id, "/".join(modes), device, "", note=why)]
    original_cls, patched_cls, args = built
    rows = []
    if case.function:  # whole training steps of a small MLP
        width = 256 if quick else 1024
        batches = [torch.randn(64, width, device=device) for _ in range(3)]

        def model():
            torch.manual_seed(0)
            return nn.Sequential(*[nn.Linear(width, width) for _ in range(8)]).to(device)

        models = (model(), model())
        shapes = f"8 x Linear({width}, {width}), 3 steps of batch 64"
        rows.append(_row(rule.id, "training", device, shapes, lambda: original_cls(models[0], batches),
                         lambda: patched_cls(models[1], batches), pairs))
        return rows
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        original = original_cls(*args).to(device)
        patched = patched_cls(*args).to(device)
    patched.load_state_dict(original.state_dict(), strict=True)
    inputs = tuple(t.to(device) for t in case.inputs(quick))
    shapes = ", ".join("x".join(map(str, t.shape)) for t in inputs)
    for mode in modes:
        if mode == "inference":
            original.eval(), patched.eval()

            def run(m):
                def f():
                    with torch.no_grad():
                        return m(*inputs)
                return f
        else:
            original.train(), patched.train()
            grads = tuple(t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs)

            def run(m):
                def f():
                    out = m(*grads)
                    out = out[0] if isinstance(out, tuple) else out
                    out.float().sum().backward()
                return f
        rows.append(_row(rule.id, mode, device, shapes, run(original), run(patched), pairs))
    return rows


def table(rows: list[Row]) -> str:
    head = ("| rule | mode | device | inputs | pairs | original ms | patched ms | ratio (median) | spread | "
            "drift | peak MiB orig/patched | note |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        if r.pairs:
            peak = "/".join(f"{p:.0f}" for p in r.peak_mb) if r.peak_mb and r.peak_mb[0] == r.peak_mb[0] else "n/a"
            lines.append(f"| {r.rule} | {r.mode} | {r.device} | {r.shapes} | {r.pairs} | {r.original_ms:.2f} | "
                         f"{r.patched_ms:.2f} | {r.ratio:.2f}x | {r.low:.2f}-{r.high:.2f} | "
                         f"{'yes' if r.drift else 'no'} | {peak} | {r.note} |")
        else:
            lines.append(f"| {r.rule} | {r.mode} | {r.device} | | | | | | | | | {r.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--pairs", type=int, default=7, help="interleaved A/B pairs (at least 7)")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--select", default="", help="comma-separated rule ids (default: every rule with a fix)")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if args.pairs < 7 and not args.quick:
        parser.error("--pairs must be at least 7 (fewer only with --quick)")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    wanted = {s.strip() for s in args.select.split(",") if s.strip()}
    rules = [r for r in load_rules() if r.fixable and (not wanted or r.id in wanted)]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        for rule in rules:
            case = CASES.get(rule.id)
            if case is None and not (rule.only_on and args.device not in rule.only_on):
                rows.append(Row(rule.id, "-", args.device, "", note="no benchmark case yet"))
                continue
            rows += measure(rule, case, args.device, args.quick, args.pairs, Path(folder))
            print(f"{rule.id} done", file=sys.stderr)
    print(f"torch {torch.__version__}, {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device == "cuda" else f" ({platform.processor() or platform.machine()}, "
             f"{torch.get_num_threads()} threads)") + f", float32, {args.pairs} interleaved pairs per row")
    print(table(rows))
    if args.json_out:
        args.json_out.write_text(json.dumps([r.__dict__ for r in rows], indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
