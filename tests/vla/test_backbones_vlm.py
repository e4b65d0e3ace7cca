"""Pretrained-VLM backbones (Idefics3/SmolVLM, Qwen2-VL, Qwen2.5-VL) built from tiny random
configs of the real transformers classes: training forward, action pass, explanations from the
KV cache, M-RoPE positions against the family's own ``get_rope_index``, padding, LoRA, local
``from_pretrained`` (offline, no hub)."""

from __future__ import annotations

import pytest
import torch

from drivevla.vla.backbones_vlm import tiny_vlm_config
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.processor_drivevla import PAD, DriveVLAProcessor

FAMILIES = ("idefics3", "qwen2_vl", "qwen2_5_vl")
QWEN = ("qwen2_vl", "qwen2_5_vl")
CAMERAS = ("front", "left")
INSTRUCTIONS = ["turn left at the next intersection and then keep going straight", "stop"]


@pytest.fixture(scope="module")
def tokenizer():
    return DriveVLAProcessor.build(DriveVLAConfig()).tokenizer


def make(family: str, tokenizer, **overrides):
    cfg = DriveVLAConfig.from_dict({
        "backbone_family": family,
        "cameras": CAMERAS,
        "max_instruction_tokens": 12,
        "max_explanation_tokens": 5,
        **overrides,
    })
    proc = DriveVLAProcessor(cfg, tokenizer)
    torch.manual_seed(0)
    return DriveVLAModel(cfg, proc.vocab_size), proc


def make_batch(proc: DriveVLAProcessor, b: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    samples = {
        "images": torch.rand(b, len(CAMERAS), 3, 96, 160, generator=g),
        "instruction": (INSTRUCTIONS * b)[:b],
        "explanation": (["slowing down for the car ahead", "ok"] * b)[:b],
        "ego": torch.randn(b, 4, generator=g),
        "route": torch.randn(b, 5, 2, generator=g),
        "target_waypoints": torch.randn(b, 6, 2, generator=g),
        "target_speeds": torch.rand(b, 6, generator=g),
        "waypoint_mask": torch.ones(b, 6),
        "meta_action": torch.zeros(b, dtype=torch.long),
        "reason": torch.ones(b, dtype=torch.long),
    }
    return proc.batch_from_samples(samples)


def continue_tokens(model, embeds, mask, extra_ids):
    """Hidden states of ``extra_ids`` fed one by one through the KV cache after ``embeds``."""
    bb = model.backbone
    _, cache = bb.run(embeds, mask, use_cache=True)
    outs = []
    for i in range(extra_ids.shape[1]):
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        h, cache = bb.run(
            bb.embed_tokens(extra_ids[:, i : i + 1]), mask, past_key_values=cache, use_cache=True
        )
        outs.append(h)
    return torch.cat(outs, dim=1)


# ---------------------------------------------------------------------- end to end
@pytest.mark.parametrize("family", FAMILIES)
def test_train_act_and_explain(family, tokenizer):
    model, proc = make(family, tokenizer)
    batch = make_batch(proc)
    assert "instruction_text" in batch and batch["instruction_mask"][1].sum() < 12  # padded
    model.train()
    loss, logs = model(batch)
    assert torch.isfinite(loss) and all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    loss.backward()
    bb = model.backbone
    assert bb.hidden_size == 64
    assert bb.token_embed.weight.grad is not None
    vision = bb._vision_modules()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in vision.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in bb._lm().parameters())

    model.eval()
    with torch.no_grad():
        out = model.act(batch, use_cache=True)
        ref = (out.waypoints.clone(), out.speeds.clone(), out.meta_logits.clone())
        assert out.waypoints.shape == (2, 6, 2) and out.speeds.shape == (2, 6)
        assert out.meta_logits.shape == (2, 8) and out.reason_logits.shape == (2, 15)
        assert out.cache.get_seq_length() == out.prefix_len
        ids = model.generate_explanation(out)
        assert len(ids) == 2 and all(len(x) <= 5 for x in ids)
        assert all(
            isinstance(t, int) and 0 <= t < proc.vocab_size and t != PAD for x in ids for t in x
        )
        assert isinstance(proc.decode(ids[0]), str)
        # the explanation never touches the action outputs nor the action pass's cache
        assert out.cache.get_seq_length() == out.prefix_len
        again = model.act(batch, use_cache=False)
    for a, b in zip(ref, (out.waypoints, out.speeds, out.meta_logits), strict=True):
        assert torch.equal(a, b)
    torch.testing.assert_close(again.waypoints, ref[0])
    torch.testing.assert_close(again.meta_logits, ref[2])


# ---------------------------------------------------------------------- positions
@pytest.mark.parametrize("family", QWEN)
def test_mrope_positions_match_get_rope_index(family, tokenizer):
    """Ours = the family's own get_rope_index (given input_ids, image_grid_thw,
    mm_token_type_ids and the attention mask) over prefix + appended tokens, with padding
    inside the instruction and at the end of the explanation."""
    model, proc = make(family, tokenizer)
    bb = model.backbone
    batch = make_batch(proc)
    ref = bb.prefix_token_ids(batch)
    b, p = ref["input_ids"].shape
    extra = 9  # ego + 4 action queries + <expl> + 3 explanation tokens
    extra_mask = torch.ones(b, extra, dtype=torch.long)
    extra_mask[1, -2:] = 0  # explanation padding
    ids = torch.cat([ref["input_ids"], torch.full((b, extra), 5)], dim=1)
    mm = torch.cat([ref["mm_token_type_ids"], torch.zeros(b, extra, dtype=torch.int)], dim=1)
    mask = torch.cat([ref["attention_mask"], extra_mask], dim=1)
    assert (mask[:, :p] == 0).any()  # padding inside the prefix

    hf, _ = bb.vlm.get_rope_index(
        input_ids=ids,
        mm_token_type_ids=mm,
        image_grid_thw=ref["image_grid_thw"],
        attention_mask=mask,
    )
    ours = bb.position_ids(mask)
    assert ours.shape == (3, b, p + extra)
    keep = mask.bool()[None].expand(3, -1, -1)
    assert torch.equal(ours[keep], hf[keep])

    # image tokens: distinct (t, h, w), t constant, h/w spanning the merged grid
    is_img = ref["mm_token_type_ids"][0].bool()
    n_img = bb.tokens_per_image
    img = ours[:, 0, :p][:, is_img][:, :n_img]  # first camera
    assert len({tuple(c) for c in img.T.tolist()}) == n_img
    _, gh, gw = bb.grid_thw[0].tolist()
    start = int(img[0, 0])
    assert set(img[0].tolist()) == {start}
    assert set(img[1].tolist()) == set(range(start, start + gh // 2))
    assert set(img[2].tolist()) == set(range(start, start + gw // 2))
    # text after the images continues from max + 1 in all three rows
    first_text = bb.n_fixed
    assert torch.equal(ours[:, :, first_text], ours[:, :, :first_text].amax(-1) + 1)
    # appended tokens continue right after the last attended instruction token: the padding
    # inside the instruction consumes no position
    last = int(mask[1, :p].nonzero().max())
    assert last < p - 1
    assert torch.equal(ours[:, 1, p], ours[:, 1, last] + 1)
    assert int(ours[0, 1, p]) - int(ours[0, 1, first_text]) == int(mask[1, first_text:p].sum())


@pytest.mark.parametrize("family", FAMILIES)
def test_cache_continuation_equals_single_pass(family, tokenizer):
    """Prefix + queries, then tokens one by one from the KV cache == everything at once."""
    model, proc = make(family, tokenizer)
    model.eval()
    bb = model.backbone
    batch = make_batch(proc)
    extra = torch.randint(5, proc.vocab_size, (2, 4), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        embeds, mask, _, _ = model._sequence(batch)
        full = torch.cat([embeds, bb.embed_tokens(extra)], dim=1)
        full_mask = torch.cat([mask, mask.new_ones(2, 4)], dim=1)
        h_full, _ = bb.run(full, full_mask)
        h_step = continue_tokens(model, embeds, mask, extra)
        torch.testing.assert_close(h_step, h_full[:, -4:], atol=1e-5, rtol=1e-4)
        if family in QWEN:
            # the check is sensitive to positions: plain 1-D positions give other outputs
            naive = bb._lm()(inputs_embeds=full, attention_mask=full_mask).last_hidden_state
            assert (naive[:, -4:] - h_full[:, -4:]).abs().max() > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_instruction_padding_is_masked(family, tokenizer):
    """A padded instruction gives the same outputs as the same sequence without padding."""
    model, proc = make(family, tokenizer)
    model.eval()
    bb = model.backbone
    batch = make_batch(proc, b=2)
    with torch.no_grad():
        embeds, mask, _, _ = model._sequence(batch)
        assert (mask[1] == 0).any()
        h_pad, _ = bb.run(embeds, mask)
        keep = mask[1].bool()
        h_compact, _ = bb.run(embeds[1:, keep], mask[1:, keep])
    torch.testing.assert_close(h_compact[0], h_pad[1, keep], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", QWEN)
def test_pixel_values_match_qwen_image_processor(family, tokenizer):
    from transformers import Qwen2VLImageProcessor

    model, _ = make(family, tokenizer)
    bb = model.backbone
    frames = torch.rand(3, 3, 96, 160, generator=torch.Generator().manual_seed(2))
    ref = Qwen2VLImageProcessor()(images=list(frames), do_rescale=False, return_tensors="pt")
    assert torch.equal(ref["image_grid_thw"], bb.grid_thw.repeat(3, 1))
    torch.testing.assert_close(bb.pixel_values(frames), ref["pixel_values"], atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------- LoRA / freezing
@pytest.mark.parametrize("family", FAMILIES)
def test_lora_and_frozen_vision(family, tokenizer):
    model, proc = make(
        family,
        tokenizer,
        lora_rank=4,
        lora_alpha=8,
        freeze_vision=True,
        gradient_checkpointing=True,
    )
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    lora = [n for n in trainable if "lora_" in n]
    assert lora and all(".language_model." in n or ".text_model." in n for n in lora)
    # only LoRA adapters and our own parameters (heads, queries, token embedding) train
    assert all("lora_" in n or not n.startswith("backbone.vlm.") for n in trainable)
    assert "backbone.token_embed.weight" in trainable
    loss, _ = model(make_batch(proc))
    loss.backward()
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0
        for n, p in model.named_parameters()
        if "lora_B" in n
    )

    model2, _ = make(family, tokenizer, lora_rank=4)
    vision = model2.backbone._vision_modules()
    assert all(p.requires_grad for p in vision.parameters())
    base_lm = [p for n, p in model2.backbone._lm().named_parameters() if "lora_" not in n]
    assert base_lm and not any(p.requires_grad for p in base_lm)


# ---------------------------------------------------------------------- loading
def _save_tiny(family: str, directory, **overrides):
    from drivevla.vla.backbones_vlm import _classes

    torch.manual_seed(3)
    vlm = _classes(family)[1](tiny_vlm_config(family, overrides))
    vlm.save_pretrained(directory)
    return vlm


@pytest.mark.parametrize("family", FAMILIES)
def test_from_pretrained_local_path(family, tokenizer, tmp_path):
    saved = _save_tiny(family, tmp_path)
    model, proc = make(family, tokenizer, pretrained_path=str(tmp_path))
    bb = model.backbone
    assert bb.tokenizer is None  # no tokenizer files: instruction ids are mapped
    ref = saved.model.state_dict()
    mine = bb.vlm.state_dict()
    assert ref.keys() == mine.keys()
    for k in ref:
        torch.testing.assert_close(mine[k], ref[k])
    batch = make_batch(proc)
    with torch.no_grad():
        out = model.act(batch, use_cache=True)
        assert len(model.generate_explanation(out)) == 2
    assert torch.isfinite(out.waypoints).all()


def test_a_pickled_pretrained_vlm_is_refused(tokenizer, tmp_path):
    """Weights only as ``pytorch_model.bin`` (a pickle): never unpickled, the load fails."""
    vlm = _save_tiny("idefics3", tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(vlm.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(OSError, match="safetensors"):
        make("idefics3", tokenizer, pretrained_path=str(tmp_path))


def test_family_tokenizer_used_for_instruction(tokenizer, tmp_path):
    """A pretrained directory with a tokenizer: the raw instruction is tokenised with it and
    wrapped in the chat template; without ``instruction_text`` the error names the key."""
    from transformers import PreTrainedTokenizerFast

    _save_tiny("qwen2_vl", tmp_path)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>")
    fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    fast.save_pretrained(tmp_path)
    model, proc = make("qwen2_vl", tokenizer, pretrained_path=str(tmp_path))
    bb = model.backbone
    assert bb.tokenizer is not None and len(bb.pre_ids) > 0 and len(bb.post_ids) > 0
    batch = make_batch(proc)
    ids, mask = bb.instruction_tokens(batch)
    expected = fast(INSTRUCTIONS[1], add_special_tokens=False)["input_ids"]
    assert ids[1, : len(expected)].tolist() == expected and int(mask[1].sum()) == len(expected)
    ref = bb.prefix_token_ids(batch)
    assert ref["input_ids"][0, 0] == fast.convert_tokens_to_ids("<|im_start|>")
    with torch.no_grad():
        out = model.act(batch, use_cache=True)
    assert torch.isfinite(out.waypoints).all()
    # positions still agree with get_rope_index with the chat template around the prefix
    hf, _ = bb.vlm.get_rope_index(
        input_ids=ref["input_ids"],
        mm_token_type_ids=ref["mm_token_type_ids"],
        image_grid_thw=ref["image_grid_thw"],
        attention_mask=ref["attention_mask"],
    )
    keep = ref["attention_mask"].bool()[None].expand(3, -1, -1)
    assert torch.equal(bb.position_ids(ref["attention_mask"])[keep], hf[keep])
    batch.pop("instruction_text")
    with pytest.raises(ValueError, match="instruction_text"):
        model.act(batch)


def test_tiny_config_overrides():
    cfg = tiny_vlm_config("qwen2_5_vl", {"text_config": {"hidden_size": 32, "vocab_size": 600}})
    assert cfg.text_config.hidden_size == 32 and cfg.vision_config.out_hidden_size == 32
    assert cfg.image_token_id == 599 and sum(cfg.text_config.rope_parameters["mrope_section"]) == 8
    cfg = tiny_vlm_config("idefics3", {"vision_config": {"image_size": 32}})
    assert cfg.vision_config.image_size == 32 and cfg.text_config.model_type == "llama"


def test_policy_checkpoint_roundtrip_and_observations(tokenizer, tmp_path):
    """DriveVLAPolicy save/load (safetensors, LoRA key names) and act/explain on an
    Observation (processor.from_observations adds instruction_text)."""
    import numpy as np

    from drivevla.core.types import (
        CameraSpec,
        EgoState,
        HighLevelCommand,
        Observation,
        RouteInfo,
    )
    from drivevla.vla.policy import DriveVLAPolicy

    model, proc = make("qwen2_vl", tokenizer, lora_rank=2)
    policy = DriveVLAPolicy(model, proc)
    policy.save_pretrained(tmp_path)
    loaded = DriveVLAPolicy.from_pretrained(tmp_path)
    batch = make_batch(proc)
    with torch.no_grad():
        a = policy.model.act(batch)
        b = loaded.model.act(batch)
    torch.testing.assert_close(a.waypoints, b.waypoints)

    rng = np.random.default_rng(0)
    specs = {c: CameraSpec(name=c, width=128, height=72) for c in CAMERAS}
    obs = Observation(
        images={c: rng.integers(0, 255, (72, 128, 3), dtype=np.uint8) for c in CAMERAS},
        cameras=specs,
        ego=EgoState(x=0.0, y=0.0, yaw=0.0, speed_mps=5.0),
        route=RouteInfo(np.zeros((5, 2)), next(iter(HighLevelCommand)), "straight", 50.0),
        instruction=INSTRUCTIONS[0],
        timestamp_s=0.0,
    )
    decision = loaded.act(obs)
    assert np.isfinite(decision.waypoints).all()
    assert isinstance(loaded.explain(), str)
