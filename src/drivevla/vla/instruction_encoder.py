"""The pretrained instruction encoder as the network reads it (``model.instruction_encoder``).

``"minilm"``: the instruction side of the model (the language model's instruction tokens, the
refusal and intent heads) reads the token states of sentence-transformers' all-MiniLM-L6-v2
(:mod:`drivevla.language.sentence_encoder`) instead of embeddings learned from scratch. The
processor tokenises instructions with the encoder's own WordPiece tokenizer; the encoder is
frozen and is not part of the checkpoint (its weights come from the installed package and are
checked against ``model.instruction_encoder_sha256``), so only the projectors that read it
train.

The states of a token sequence never change, so :class:`FrozenTokenStates` computes each
distinct sequence once and keeps it (least recently used first out): an instruction is
encoded when it changes, not every control tick, and in training each rendered text or
sentence once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from drivevla.language.sentence_encoder import SentenceEncoder

STATE_DIM = SentenceEncoder.dim
MAX_CACHED = 100_000  # distinct token sequences kept (about 15 KB each in float16)

# one loaded encoder per weights hash in a process, shared by every model
_LOADED: dict[str, SentenceEncoder] = {}


def loaded_encoder(sha256: str, device: torch.device | str = "cpu") -> SentenceEncoder:
    """The process's encoder with weights ``sha256``, on ``device`` (loaded on first use)."""
    if sha256 not in _LOADED:
        _LOADED[sha256] = SentenceEncoder(expected_sha256=sha256)
    encoder = _LOADED[sha256]
    encoder.model.to(device)
    return encoder


class FrozenTokenStates:
    """``(ids, mask) -> (B, L, 384)`` float32 token states of the frozen encoder, zero where
    ``mask`` is 0; rows with no real token are all zero. Not an ``nn.Module``: the encoder's
    weights stay out of the model's parameters and state dict."""

    def __init__(self, sha256: str, max_cached: int = MAX_CACHED) -> None:
        self.sha256 = sha256
        self.max_cached = max_cached
        loaded_encoder(sha256)  # now, not on the first control tick (and a wrong hash fails here)
        self._cache: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self._given: torch.Tensor | None = None

    @contextmanager
    def given(self, states: torch.Tensor) -> Iterator[None]:
        """Within it, calls return ``states`` (B, L, 384), masked, instead of encoding: an
        exported action graph reads the states as an input (the encoder is its own graph)."""
        self._given = states
        try:
            yield
        finally:
            self._given = None

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self._given is not None:
            return self._given * mask.unsqueeze(-1).to(self._given.dtype)
        lengths = mask.sum(-1).tolist()
        rows = [ids[i, :n] for i, n in enumerate(lengths)]
        host = ids.cpu().numpy()  # one copy off the device, not one per row
        keys = [host[i, :n].tobytes() for i, n in enumerate(lengths)]
        missing = {k: i for i, k in enumerate(keys) if lengths[i] > 0 and k not in self._cache}
        if missing:
            self._encode([rows[i] for i in missing.values()], list(missing), ids.device)
        out = torch.zeros(*ids.shape, STATE_DIM, device=ids.device)
        for i, (key, n) in enumerate(zip(keys, lengths, strict=True)):
            if n > 0:
                states = self._cache[key]
                self._cache.move_to_end(key)
                out[i, :n] = states.to(device=ids.device, dtype=out.dtype)
        return out * mask.unsqueeze(-1).to(out.dtype)

    def _encode(self, rows: list[torch.Tensor], keys: list[bytes], device: torch.device
                ) -> None:
        encoder = loaded_encoder(self.sha256, device)
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long, device=device)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = row
            mask[i, :len(row)] = 1
        with torch.autocast(device.type, enabled=False):
            states = encoder.token_states(ids, mask).float()
        for i, key in enumerate(keys):
            self._cache[key] = states[i, :len(rows[i])].to("cpu", torch.float16)
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
