"""Time every adopter_kernels function against the eager code it replaces, on CPU.

Each row builds the eager original and the kernel call over *the same modules and inputs*, and
measures them alternately (``--rounds`` interleaved rounds of ``torch.utils.benchmark``'s
``blocked_autorange``; the best round per side is reported) so that drift in machine load hits
both sides alike. "fwd" runs under ``torch.no_grad()`` in eval mode (inference); "fwd+bwd" runs in train
mode with gradients (training step minus the optimizer). Ratio = eager time / kernel time, so
above 1.0 means the kernel is faster.

    python benchmarks/kernels_cpu.py            # shapes comparable to SPEC section 7
    python benchmarks/kernels_cpu.py --quick    # small shapes, a few seconds (smoke test)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import warnings
from dataclasses import dataclass
from typing import Callable, List, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils import benchmark

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import adopter_kernels as K  # noqa: E402


@dataclass
class Case:
    kernel: str
    variant: str
    mode: str  # "fwd" or "fwd+bwd"
    eager: Callable[[], object]
    fused: Callable[[], object]
    modules: List[nn.Module]
    train: bool


def _backward(fn: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        out = fn()
        if isinstance(out, (tuple, list)):
            out = sum(o.float().sum() for o in out if isinstance(o, torch.Tensor) and o.requires_grad)
        else:
            out = out.sum()
        out.backward()

    return run


def _no_grad(fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with torch.no_grad():
            return fn()

    return run


def _pair(kernel: str, variant: str, modules: List[nn.Module], eager, fused, *, train: bool) -> Case:
    """Modules are shared by both sides: a fused kernel must read the very same parameters.
    Their train/eval mode is set by ``measure`` right before timing, since cases share them."""
    if train:
        return Case(kernel, variant, "fwd+bwd", _backward(eager), _backward(fused), modules, True)
    return Case(kernel, variant, "fwd", _no_grad(eager), _no_grad(fused), modules, False)


def build_cases(quick: bool) -> List[Case]:
    B, L, H = (2, 32, 128) if quick else (8, 128, 768)
    cases: List[Case] = []

    # softmax ---------------------------------------------------------------------------------
    s = torch.randn(B, 12, L, L)
    sg = s.clone().requires_grad_()
    cases.append(_pair("softmax", f"({B},12,{L},{L})", [], lambda: F.softmax(s, dim=-1), lambda: K.softmax(s, dim=-1), train=False))
    cases.append(_pair("softmax", f"({B},12,{L},{L})", [], lambda: F.softmax(sg, dim=-1), lambda: K.softmax(sg, dim=-1), train=True))

    # dropout -> add -> LayerNorm ---------------------------------------------------------------
    x, r = torch.randn(B, L, H), torch.randn(B, L, H)
    xg = x.clone().requires_grad_()
    drop, ln = nn.Dropout(0.1), nn.LayerNorm(H)
    cases.append(_pair("dropout_add_layer_norm", f"({B},{L},{H})", [drop, ln],
                       lambda: ln(drop(x) + r), lambda: K.dropout_add_layer_norm(x, r, drop, ln), train=False))
    cases.append(_pair("dropout_add_layer_norm", f"({B},{L},{H}) p=0.1", [drop, ln],
                       lambda: ln(drop(xg) + r), lambda: K.dropout_add_layer_norm(xg, r, drop, ln), train=True))

    # Linear -> GELU ---------------------------------------------------------------------------
    lin = nn.Linear(H, 4 * H)
    acts = [("nn.GELU", nn.GELU())]
    try:
        from transformers.activations import ACT2FN

        acts.append(("gelu_new (NewGELUActivation)", ACT2FN["gelu_new"]))
    except ImportError:  # transformers is optional for this script
        pass
    for label, act in acts:
        cases.append(_pair("bias_gelu", f"{label} {H}->{4 * H}", [lin, act],
                           lambda act=act: act(lin(x)), lambda act=act: K.bias_gelu(x, lin, act), train=False))
        cases.append(_pair("bias_gelu", f"{label} {H}->{4 * H}", [lin, act],
                           lambda act=act: act(lin(xg)), lambda act=act: K.bias_gelu(xg, lin, act), train=True))

    # Conv2d -> BatchNorm2d ----------------------------------------------------------------------
    C, S = (16, 16) if quick else (64, 56)
    img = torch.randn(B, C, S, S)
    imgg = img.clone().requires_grad_()
    conv, bn = nn.Conv2d(C, C, 3, padding=1, bias=False), nn.BatchNorm2d(C)
    with torch.no_grad():
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2)
    cases.append(_pair("conv_bn", f"{C}->{C} 3x3 ({B},{C},{S},{S})", [conv, bn],
                       lambda: bn(conv(img)), lambda: K.conv_bn(img, conv, bn), train=False))
    cases.append(_pair("conv_bn", f"{C}->{C} 3x3 ({B},{C},{S},{S})", [conv, bn],
                       lambda: bn(conv(imgg)), lambda: K.conv_bn(imgg, conv, bn), train=True))

    # Linear -> BatchNorm1d ----------------------------------------------------------------------
    N, D = (64, 128) if quick else (1024, 512)
    v, vg = torch.randn(N, D), torch.randn(N, D, requires_grad=True)
    lin1, bn1 = nn.Linear(D, D), nn.BatchNorm1d(D)
    cases.append(_pair("linear_bn", f"({N},{D})->{D}", [lin1, bn1],
                       lambda: bn1(lin1(v)), lambda: K.linear_bn(v, lin1, bn1), train=False))
    cases.append(_pair("linear_bn", f"({N},{D})->{D}", [lin1, bn1],
                       lambda: bn1(lin1(vg)), lambda: K.linear_bn(vg, lin1, bn1), train=True))

    # fused QKV ----------------------------------------------------------------------------------
    q, k, w = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)
    cases.append(_pair("fused_qkv", f"3x {H}->{H} ({B},{L})", [q, k, w],
                       lambda: (q(x), k(x), w(x)), lambda: K.fused_qkv(x, q, k, w), train=False))
    cases.append(_pair("fused_qkv", f"3x {H}->{H} ({B},{L})", [q, k, w],
                       lambda: (q(xg), k(xg), w(xg)), lambda: K.fused_qkv(xg, q, k, w), train=True))

    # attention layers ---------------------------------------------------------------------------
    try:
        from transformers import BertConfig, GPT2Config, T5Config
        from transformers.models.bert.modeling_bert import BertSelfAttention
        from transformers.models.gpt2.modeling_gpt2 import GPT2Attention
        from transformers.models.t5.modeling_t5 import T5Attention
    except ImportError:
        return cases
    seqs = [L] if quick else [128, 512]
    heads = 4 if quick else 12
    for seq in seqs:
        xs = torch.randn(B, seq, H)
        xsg = xs.clone().requires_grad_()
        pad = torch.ones(B, seq)
        pad[0, seq // 2 :] = 0  # one right-padded sequence
        mask = (1.0 - pad[:, None, None, :]) * torch.finfo(torch.float32).min
        for p_drop in (0.0, 0.1):
            cfg = BertConfig(hidden_size=H, num_attention_heads=heads, attention_probs_dropout_prob=p_drop)
            orig = BertSelfAttention(cfg)
            fast = K.sdpa_bert_self_attention(BertSelfAttention)(cfg)
            fast.load_state_dict(orig.state_dict())
            if p_drop == 0.0:
                cases.append(_pair("sdpa_bert_self_attention", f"seq {seq}, padding mask", [orig, fast],
                                   lambda o=orig, xs=xs, m=mask: o(xs, attention_mask=m),
                                   lambda f=fast, xs=xs, m=mask: f(xs, attention_mask=m), train=False))
            cases.append(_pair("sdpa_bert_self_attention", f"seq {seq}, padding mask, p={p_drop}", [orig, fast],
                               lambda o=orig, x_=xsg, m=mask: o(x_, attention_mask=m),
                               lambda f=fast, x_=xsg, m=mask: f(x_, attention_mask=m), train=True))

        d_kv = H // heads
        t5cfg = T5Config(d_model=H, d_kv=d_kv, num_heads=heads, dropout_rate=0.0)
        orig, fast = T5Attention(t5cfg, True), K.sdpa_t5_attention(T5Attention)(t5cfg, True)
        fast.load_state_dict(orig.state_dict())
        for train in (False, True):
            inp = xsg if train else xs
            cases.append(_pair("sdpa_t5_attention", f"seq {seq}, relative bias + mask", [orig, fast],
                               lambda o=orig, x_=inp, m=mask: o(x_, mask=m)[0],
                               lambda f=fast, x_=inp, m=mask: f(x_, mask=m)[0], train=train))

        g2cfg = GPT2Config(n_embd=H, n_head=heads, n_positions=max(seqs), attn_pdrop=0.0, resid_pdrop=0.0)
        orig, fast = GPT2Attention(g2cfg, layer_idx=0), K.sdpa_gpt2_attention(GPT2Attention)(g2cfg, layer_idx=0)
        fast.load_state_dict(orig.state_dict())
        for train in (False, True):
            inp = xsg if train else xs
            cases.append(_pair("sdpa_gpt2_attention", f"seq {seq}, causal", [orig, fast],
                               lambda o=orig, x_=inp: o(x_)[0], lambda f=fast, x_=inp: f(x_)[0], train=train))
            cases.append(_pair("sdpa_gpt2_attention", f"seq {seq}, causal + padding mask", [orig, fast],
                               lambda o=orig, x_=inp, m=mask: o(x_, attention_mask=m)[0],
                               lambda f=fast, x_=inp, m=mask: f(x_, attention_mask=m)[0], train=train))
    return cases


def measure(case: Case, rounds: int, min_run_time: float) -> tuple:
    for m in case.modules:
        m.train(case.train)
    eager_t, fused_t = [], []
    for fn in (case.eager, case.fused):  # warm-up: caches, lazy allocations, first-call costs
        fn()
    for _ in range(rounds):
        eager_t.append(benchmark.Timer("fn()", globals={"fn": case.eager}).blocked_autorange(min_run_time=min_run_time).median)
        fused_t.append(benchmark.Timer("fn()", globals={"fn": case.fused}).blocked_autorange(min_run_time=min_run_time).median)
    # Best round per side: on a shared machine, other processes only ever add time, so the
    # minimum is the least contaminated estimate; interleaving keeps the two sides comparable.
    return min(eager_t), min(fused_t)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small shapes, for a smoke test")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per side (default 5)")
    ap.add_argument("--min-run-time", type=float, default=0.3, help="seconds per blocked_autorange")
    ap.add_argument("--only", default="", help="comma-separated kernel names to run")
    ap.add_argument("--threads", type=int, default=0,
                    help="intra-op threads (default: torch's choice); 1 is far less noisy on a busy machine")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    # transformers 4.34 warns about a torch pytree API on import; it is noise in the table.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")
    print(f"# {_cpu_name()}, {os.cpu_count()} logical cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} intra-op threads), Python {platform.python_version()}")
    print(f"# ratio = eager / kernel (>1 = kernel faster); best of {args.rounds} interleaved rounds (each the median of a blocked_autorange)\n")
    header = f"| {'kernel':<24} | {'variant':<40} | {'mode':<7} | {'eager ms':>9} | {'kernel ms':>9} | {'ratio':>5} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    for case in build_cases(args.quick):
        if only and case.kernel not in only:
            continue
        e, f = measure(case, args.rounds, args.min_run_time)
        print(f"| {case.kernel:<24} | {case.variant:<40} | {case.mode:<7} | {e * 1e3:9.3f} | {f * 1e3:9.3f} | {e / f:5.2f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
