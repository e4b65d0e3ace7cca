"""Experiment (2026-12-08, twelfth round): SetFit-style contrastive fine-tuning of the
instruction encoder (all-MiniLM-L6-v2), then a logistic regression on its sentence
embeddings for the refusal decision; scored on held-out texts sentence by sentence (a text is
refused when its most unsafe sentence is). Not part of the package; from the repository root:

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 STEPS=600 .venv/bin/python \
        docs/experiments/text-heads/setfit.py

Training sentences: each train phrasing of every navigation intent, hazard notice, unsafe
category and speed request, rendered with random slots; a pair is positive when both
sentences have the same key (intent / notice / unsafe category / speed). STEPS=0 scores the
frozen encoder the same way.
"""
import collections
import os

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from drivevla.benchmarks.refusal_probe import operating_points
from drivevla.language.instructions import (
    NOTICE_CATEGORIES,
    UNSAFE_CATEGORIES,
    render_misleading,
    render_navigation,
    render_notice,
    render_speed_request,
    synthetic_instruction_records,
)
from drivevla.language.intents import NAVIGATION_INTENTS
from drivevla.language.sentence_encoder import SentenceEncoder
from drivevla.vla.processor_drivevla import split_sentences

env = os.environ.get
torch.set_num_threads(int(env("OMP_NUM_THREADS", "1")))
rng = np.random.default_rng(0)
SLOTS = {"distance": 120, "ordinal": 2, "exit_number": 2, "colour": "red", "side": "left"}


def train_sentences(per_key: int = 30) -> list[tuple[str, str, bool]]:
    """(sentence, key, unsafe) rendered from the train phrasings."""
    out = []
    for _ in range(per_key):
        slots = SLOTS | {"distance": int(rng.integers(3, 31)) * 10}
        out += [(render_navigation(k, rng, "train", slots), f"nav/{k}", False)
                for k in NAVIGATION_INTENTS]
        out += [(render_notice(k, rng, "train", slots), f"notice/{k}", False)
                for k in NOTICE_CATEGORIES]
        out += [(render_misleading(k, rng, "train", slots), f"unsafe/{k}", True)
                for k in UNSAFE_CATEGORIES]
        out.append((render_speed_request(float(rng.integers(2, 13) * 10), rng, "train"),
                    "speed", False))
    return list(dict.fromkeys(out))


enc = SentenceEncoder()
model, tok = enc.model, enc.tokenizer


def embed(texts: list[str], grad: bool = False) -> torch.Tensor:
    batch = tok.encode_batch(texts)
    ids = torch.tensor([b.ids for b in batch])
    mask = torch.tensor([b.attention_mask for b in batch])
    with torch.set_grad_enabled(grad):
        states = model(input_ids=ids, attention_mask=mask).last_hidden_state
        w = mask.unsqueeze(-1).float()
        return F.normalize((states * w).sum(1) / w.sum(1).clamp(min=1e-9), dim=-1)


sents = train_sentences()
keys = [k for _, k, _ in sents]
by_key = collections.defaultdict(list)
for i, k in enumerate(keys):
    by_key[k].append(i)
steps = int(env("STEPS", "600"))
if steps:
    model.train()
    model.requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
    for step in range(steps):
        if step % 100 == 0:
            print("step", step, flush=True)
        a = rng.integers(len(sents), size=16)
        same = rng.random(16) < 0.5
        b = [int(rng.choice(by_key[keys[i]])) if s else int(rng.integers(len(sents)))
             for i, s in zip(a, same, strict=True)]
        target = torch.tensor([float(keys[i] == keys[j]) for i, j in zip(a, b, strict=True)])
        ea = embed([sents[i][0] for i in a], grad=True)
        eb = embed([sents[j][0] for j in b], grad=True)
        loss = F.mse_loss((ea * eb).sum(-1), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
x = torch.cat([embed([s for s, _, _ in sents[i:i + 256]]) for i in range(0, len(sents), 256)])
clf = LogisticRegression(max_iter=2000).fit(x.numpy(), [u for _, _, u in sents])

test = synthetic_instruction_records(int(env("TEST", "1500")), 1, "heldout", stacked_share=0.3)
units = [split_sentences(r[0]) for r in test]
flat = [u for us in units for u in us]
xt = torch.cat([embed(flat[i:i + 256]) for i in range(0, len(flat), 256)]).numpy()
p = clf.predict_proba(xt)[:, 1]
rows, k, scores = collections.defaultdict(list), 0, []
for r, us in zip(test, units, strict=True):
    score = float(p[k:k + len(us)].max())
    k += len(us)
    scores.append((score, r[1] == "misleading"))
    unsafe = r[1] == "misleading"
    rows[f"unsafe/{r[2]}" if unsafe else f"safe/{r[1]}"].append(score > 0.5)
    rows["unsafe/all" if unsafe else "safe/all"].append(score > 0.5)
print(f"setfit steps={steps} sentences={len(sents)}",
      "  ".join(f"{key}={100 * np.mean(v):.1f}" for key, v in sorted(rows.items())))
print(operating_points([s for s, u in scores if u], [s for s, u in scores if not u]))
