"""The two sizes a class is built at: tiny for the equivalence checks, larger for timing."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class Sizes:
    name: str
    batch: int
    seq: int
    hidden: int
    heads: int
    ffn: int
    layers: int
    vocab: int
    positions: int
    embed: int  # factorised embeddings (ALBERT's embedding_size), ResNet's stem width
    channels: int  # convolution widths
    image: int  # image height and width

    def with_overrides(self, values: dict) -> "Sizes":
        known = {f.name for f in fields(self)} - {"name"}
        clean = {k.replace("-", "_"): v for k, v in values.items()}
        unknown = set(clean) - known
        if unknown:
            raise ValueError(f"unknown size key(s): {', '.join(sorted(unknown))}")
        bad = [k for k, v in clean.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
        if bad:
            raise ValueError(f"size key(s) {', '.join(sorted(bad))} must be positive integers")
        return replace(self, **clean)


# Small enough that a model class builds in milliseconds; the widths differ from each other
# (hidden 32, ffn 64, embed 16, seq 8, heads 4) so a transposed or mixed-up dimension fails
# loudly instead of broadcasting, and they divide as configs require (32 / 4 heads).
VERIFY = Sizes("verify", batch=2, seq=8, hidden=32, heads=4, ffn=64, layers=2, vocab=99, positions=64,
               embed=16, channels=8, image=32)

# A block of a small real model (BERT-small widths, sequence 128): big enough that kernel time,
# not Python overhead, dominates, small enough to time every patch in a few seconds on 2 cores.
BENCHMARK = Sizes("benchmark", batch=4, seq=128, hidden=256, heads=4, ffn=1024, layers=2, vocab=1000,
                  positions=512, embed=128, channels=32, image=64)
