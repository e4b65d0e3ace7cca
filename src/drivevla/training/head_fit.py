"""Fit (or refit) the text-only refusal head of a DriveVLA checkpoint, leaving every other
tensor as it was:

    drivevla fit-refusal --policy DIR --out DIR2 [--steps 1500] [--batch-size 64] [--seed 0]

The refusal head reads the instruction only (its own embeddings, a bag of words), and
nothing else in the network reads it: the waypoints, speeds, meta-action and reason logits of
``DIR2`` are those of ``DIR``. So the head can be trained on its own, on instructions rendered
from the *train* phrasings (:func:`instructions.synthetic_instructions`): to give a checkpoint
trained without one a refusal decision, or to replace a head of another design. Any
``safety_head.*`` tensors of ``DIR`` are discarded. ``DIR2/refusal_fit.json`` records the
settings, the final loss, the source checkpoint, versions and hardware.

    drivevla fit-intent --policy DIR --out DIR2 [--by-sentence] [--steps 1500] ...

does the same for the intent head's classifier (``intent_head.embed`` / ``.mlp``;
``DIR2/intent_fit.json``), e.g. to give a checkpoint the sentence-by-sentence intent head
(``model.intent_head: by_sentence``). Unlike the refusal head, the action path reads the intent
head's probabilities (one token, ``intent_head.token``, kept from ``DIR``), so ``DIR`` must
have been trained with an intent head: the refitted head has to speak the language its reader
learned, and DIR2's driving is worth measuring again, not assumed to be DIR's.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from drivevla.core.jsonio import write_json_atomic
from drivevla.core.provenance import provenance
from drivevla.training.data import instruction_texts
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.policy import (
    WEIGHTS_NAME,
    DriveVLAPolicy,
    load_state_checked,
    load_weights,
    upgrade_state_dict,
)
from drivevla.vla.processor_drivevla import DriveVLAProcessor

HEAD_PREFIX = "safety_head."
FIT_INFO = "refusal_fit.json"
INTENT_PREFIX = ("intent_head.embed.", "intent_head.mlp.")  # the classifier, not its token
INTENT_FIT_INFO = "intent_fit.json"


def fit_refusal_head(src: str | Path, out: str | Path, steps: int = 1500, batch_size: int = 64,
                     lr: float = 1e-3, seed: int = 0, pool: int = 20000,
                     stacked_share: float = 0.0) -> dict[str, Any]:
    """The refusal head of ``src`` trained anew, alone; saved with the rest as ``out``."""
    return _fit_text_head("refusal", src, out, steps, batch_size, lr, seed, pool, stacked_share)


def fit_intent_head(src: str | Path, out: str | Path, steps: int = 1500, batch_size: int = 64,
                    lr: float = 1e-3, seed: int = 0, pool: int = 20000,
                    stacked_share: float = 0.0, by_sentence: bool = False) -> dict[str, Any]:
    """The intent head of ``src`` trained anew, alone (``by_sentence``: as the
    sentence-by-sentence head, with its "no navigation" class); saved as ``out``."""
    return _fit_text_head("intent", src, out, steps, batch_size, lr, seed, pool, stacked_share,
                          by_sentence)


def _fit_text_head(which: str, src: str | Path, out: str | Path, steps: int, batch_size: int,
                   lr: float, seed: int, pool: int, stacked_share: float,
                   by_sentence: bool = False) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    src, out = Path(src), Path(out)
    if steps < 1 or batch_size < 1 or pool < 1:
        raise ValueError("steps, batch_size and pool must be >= 1")
    if src.resolve() == out.resolve():
        raise ValueError("--out must differ from --policy: the source checkpoint is kept")
    config = DriveVLAConfig.load(src)
    config.vocabularies.require_code_order(f"fitting a text head of {src}")
    if which == "intent":
        if not config.model.intent_head:
            raise ValueError(f"{src} has no intent head: its action path never learned to "
                             "read one, so fit-intent needs a checkpoint trained with "
                             "model.intent_head set")
        prefix, info_name = INTENT_PREFIX, INTENT_FIT_INFO
        config = config.with_overrides(
            {"model.intent_head": "by_sentence" if by_sentence else "bag"})
    else:
        prefix, info_name = HEAD_PREFIX, FIT_INFO
        config = config.with_overrides({"model.refusal_head": "bag"})
    processor = DriveVLAProcessor.load(src, config)
    weights = src / WEIGHTS_NAME
    loaded = load_weights(weights)
    torch.manual_seed(seed)
    model = DriveVLAModel(config, processor.vocab_size)
    state = {k: v for k, v in upgrade_state_dict(loaded).items()
             if not k.startswith(prefix)}
    fresh = {k: v for k, v in model.state_dict().items() if k.startswith(prefix)}
    load_state_checked(model, {**state, **fresh}, str(weights))
    head = model.intent_head if which == "intent" else model.safety_head

    texts = instruction_texts(processor, pool, seed, stacked_share)
    if which == "refusal":
        ids_t, mask_t = texts["aux_instruction_ids"], texts["aux_instruction_mask"]
        y = texts["aux_unsafe"].float()
    elif by_sentence:  # every sentence alone, labelled (padding sentences dropped)
        keep = texts["aux_intent_sentence_label"].flatten() >= 0
        ids_t = texts["aux_intent_sentence_ids"].flatten(0, 1)[keep]
        mask_t = texts["aux_intent_sentence_mask"].flatten(0, 1)[keep]
        y = texts["aux_intent_sentence_label"].flatten()[keep]
    else:
        ids_t, mask_t, y = (texts["aux_instruction_ids"], texts["aux_instruction_mask"],
                            texts["aux_intent"])
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    head.train()
    losses: list[float] = []
    from tqdm.auto import tqdm

    for _ in tqdm(range(steps), desc=f"fit {which} head", unit="step"):
        j = torch.randint(len(y), (batch_size,), generator=gen)
        logits = head(ids_t[j], mask_t[j])
        loss = (F.binary_cross_entropy_with_logits(logits, y[j]) if which == "refusal"
                else F.cross_entropy(logits, y[j]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    policy = DriveVLAPolicy(model, processor)
    policy.save_pretrained(out)
    for extra in ("train_info.json", "MODEL_CARD.md"):
        if (src / extra).is_file():
            shutil.copy2(src / extra, out / extra)
    tail = losses[-min(100, len(losses)):]
    info = {"source": str(src), "steps": steps, "batch_size": batch_size, "lr": lr,
            "seed": seed, "pool": pool, "stacked_share": stacked_share, "split": "train",
            "head": which, "final_loss_mean_last_100": sum(tail) / len(tail),
            "model_config": config.to_dict(), **provenance()}
    if which == "intent":
        info["by_sentence"] = by_sentence
    write_json_atomic(out / info_name, info)
    return info
