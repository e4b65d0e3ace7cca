"""Experiment (2026-12-08, twelfth round): the text-only refusal head trained alone on rendered
train texts, scored on held-out texts, by design. Not part of the package; run from the
repository root:

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 LEVEL=text|sentence HEAD=bag|attn POOL=6000 GRAMMAR=0|6000 \
        TEST=1500 WDS=0.0,0.3 .venv/bin/python docs/experiments/text-heads/probe.py runs/tiny-v9

LEVEL=text: the head reads the whole instruction (as the shipped ``bag`` head); sentence: it
reads each sentence alone, trained on sentence labels (a sentence of an unsafe text is unsafe
unless it also occurs in a safe one), and a text is refused when its most unsafe sentence is.
GRAMMAR: that many texts from ``grammar.py`` (beside this file) added to the training pool.
The checkpoint gives the tokenizer and, with ``model.instruction_encoder``, the frozen
encoder; the head is a fresh ``TextBagHead``, 1500 AdamW steps of 64 texts.
"""
import collections
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from drivevla.language.instructions import synthetic_instruction_records
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.heads.text import TextBagHead
from drivevla.vla.instruction_encoder import FrozenTokenStates
from drivevla.vla.processor_drivevla import DriveVLAProcessor, split_sentences

sys.path.insert(0, os.path.dirname(__file__))
from grammar import grammar_instruction_records  # noqa: E402

torch.set_num_threads(1)
env = os.environ.get
src, level = sys.argv[1], env("LEVEL", "text")
cfg = DriveVLAConfig.load(src)
proc = DriveVLAProcessor.load(src, cfg)
train = synthetic_instruction_records(int(env("POOL", "6000")), 0, "train", stacked_share=0.3)
if int(env("GRAMMAR", "0")):
    train += grammar_instruction_records(int(env("GRAMMAR")), 5)
test = synthetic_instruction_records(int(env("TEST", "1500")), 1, "heldout", stacked_share=0.3)
states = (FrozenTokenStates(cfg.model.instruction_encoder_sha256)
          if cfg.model.instruction_encoder else None)


def encode(texts):
    b = proc.encode_instructions(texts)
    return b["instruction_ids"], b["instruction_mask"]


if level == "text":
    x_ids, x_mask = encode([r[0] for r in train])
    y = torch.tensor([r[1] == "misleading" for r in train]).float()
    test_units = [[r[0]] for r in test]
else:
    safe = {s for r in train if r[1] != "misleading" for s in split_sentences(r[0])}
    sentences = [(s, r[1] == "misleading" and s not in safe)
                 for r in train for s in split_sentences(r[0])]
    x_ids, x_mask = encode([s for s, _ in sentences])
    y = torch.tensor([u for _, u in sentences]).float()
    test_units = [split_sentences(r[0]) for r in test]
t_ids, t_mask = encode([u for units in test_units for u in units])



class AttentionPoolHead(TextBagHead):
    """HEAD=attn: the bag's token features pooled by a learned attention score instead of
    the mean (a word like "don't" or "hit" can outweigh the objects)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        d = cfg.model.text_head_dim
        self.score = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.Tanh(),
                                         torch.nn.Linear(d, 1))

    def forward(self, ids, mask):
        feats, mask = self._tokens(ids, mask)
        w = self.score(feats).squeeze(-1).masked_fill(mask == 0, float("-inf"))
        pooled = (torch.softmax(w, dim=-1).unsqueeze(-1) * feats).sum(1)
        return self.mlp(pooled).squeeze(-1)


HEAD = AttentionPoolHead if env("HEAD", "bag") == "attn" else TextBagHead
for wd in (float(w) for w in env("WDS", "0.0,0.3").split(",")):
    torch.manual_seed(0)
    head = HEAD(proc.vocab_size, cfg.model.text_head_dim, wd, 1, states=states)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(0)
    head.train()
    for _ in range(1500):
        j = torch.randint(len(y), (64,), generator=gen)
        loss = F.binary_cross_entropy_with_logits(head(x_ids[j], x_mask[j]), y[j])
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        p = torch.sigmoid(head(t_ids, t_mask)).tolist()
    rows, k = collections.defaultdict(list), 0
    for r, units in zip(test, test_units, strict=True):
        refused = max(p[k:k + len(units)]) > 0.5
        k += len(units)
        unsafe = r[1] == "misleading"
        rows[f"unsafe/{r[2]}" if unsafe else f"safe/{r[1]}"].append(refused)
        rows["unsafe/all" if unsafe else "safe/all"].append(refused)
    print(f"{level} {env('HEAD', 'bag')} grammar={env('GRAMMAR', '0')} wd={wd}",
          "  ".join(f"{key}={100 * np.mean(v):.1f}" for key, v in sorted(rows.items())))
