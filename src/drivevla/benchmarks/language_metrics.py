"""BLEU-4, ROUGE-L and CIDEr-D of generated explanations against reference explanations, as
in the COCO caption evaluation, by ``pycocoevalcap`` (the ``language-metrics`` extra).

- **Implementation**: ``pycocoevalcap``'s ``Bleu(4)`` (corpus BLEU-4, "closest" reference
  length), ``Rouge`` (ROUGE-L F-measure with beta 1.2, averaged over sentences) and ``Cider``
  (CIDEr-D: TF-IDF over the evaluated references, sigma 6 length penalty, clipping, x10),
  all pure Python. Its PTB tokenizer needs Java, so :func:`tokenize` stands in for it
  (lower case, the PTB tokenizer's punctuation removed, whitespace split): the one part
  written here, tested against hand-computed values.
- One reference per frame (the expert's explanation there). CIDEr's document frequencies
  come from the references of the frames scored, so CIDEr values compare only between runs
  on the same frames.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from drivevla.core.errors import DriveVLAError

INSTALL_HINT = "pip install 'drivevla[language-metrics]' (or pip install pycocoevalcap)"
METRICS = ("bleu_4", "rouge_l", "cider")
# what pycocoevalcap's PTBTokenizer removes (tokenizer/ptbtokenizer.py PUNCTUATIONS)
_PUNCTUATION = re.compile(r"""(?:''|'|``|`|-LRB-|-RRB-|-LCB-|-RCB-|[.?!,:\-;])""")
# words, clitics split off as the PTB tokenizer does ("car's" -> "car 's", "don't" -> "do n't")
_WORD = re.compile(r"[a-z0-9]+?(?=n't\b)|n't\b|[a-z0-9]+|'[a-z]+|[^\sa-z0-9]")


class LanguageMetricsError(DriveVLAError, ImportError):
    """The caption metrics cannot run: ``pycocoevalcap`` is not installed."""


def tokenize(text: str) -> str:
    """``text`` lower-cased and split into words, the punctuation the PTB tokenizer drops
    removed, joined by single spaces: "Braking: the car's slow." -> "braking the car 's
    slow".
    """
    words = _WORD.findall(text.lower())
    return " ".join(w for w in words if not _PUNCTUATION.fullmatch(w))


def implementation() -> str:
    """Which implementation scores: ``pycocoevalcap <version>`` (raises when missing)."""
    try:
        return f"pycocoevalcap {metadata.version('pycocoevalcap')}"
    except metadata.PackageNotFoundError as exc:
        raise LanguageMetricsError(f"the caption metrics need pycocoevalcap; {INSTALL_HINT}"
                                   ) from exc


def caption_scores(predictions: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """``bleu_4`` (0..1), ``rouge_l`` (0..1) and ``cider`` (CIDEr-D, 0..10) of
    ``predictions[i]`` against ``references[i]``, plus BLEU-1..3 (``bleu_1`` ...), and
    ``n``. Raises ``ValueError`` for unequal lengths, no pair or an empty reference."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("no explanation to score")
    implementation()  # the named error when missing
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    res = {i: [tokenize(p) or "<empty>"] for i, p in enumerate(predictions)}
    gts = {i: [tokenize(r)] for i, r in enumerate(references)}
    empty = [i for i, (r,) in gts.items() if not r]
    if empty:
        raise ValueError(f"reference(s) {empty[:5]} are empty after tokenizing")
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    return {"n": len(references), **{f"bleu_{k + 1}": float(b) for k, b in enumerate(bleu)},
            "rouge_l": float(rouge), "cider": float(cider)}
