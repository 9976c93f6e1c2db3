"""The per-rule benchmark behind ``benchmarks/rules.py`` (see that script and benchmarks/README.md).

``stats`` (interleaved A/B pairs, spread, drift), ``timing`` (CPU and CUDA clocks, peak
memory), ``fixtures`` (fixture modules, the patched source from the real pipeline, both
imported as modules, equality), ``harness`` (one rule through all of it)."""
