"""DriveVLA (default family): training signal, persistence, the action/explanation split,
and errors that name bad inputs and bad checkpoints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from drivevla.core.types import CameraSpec, EgoState
from drivevla.runtime.faults import FaultyPolicy, PolicyFaults, PolicyFaultsError
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.policy import CheckpointError, DriveVLAPolicy
from drivevla.vla.processor_drivevla import DriveVLAProcessor
from support.runtime_parts import ScriptedPolicy
from support.vla_parts import CORPUS, TINY, tiny_obs, tiny_samples


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    cfg = DriveVLAConfig.from_dict(TINY)
    proc = DriveVLAProcessor.build(cfg, CORPUS)
    return cfg, proc


def test_overfitting_a_tiny_batch_drives_the_loss_down_10x(parts):
    cfg, proc = parts
    torch.manual_seed(0)
    model = DriveVLAModel(cfg, proc.vocab_size)
    batch = proc.batch_from_samples(tiny_samples(4))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    first = None
    for _ in range(300):
        loss, _ = model(batch)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < first / 10


def test_save_load_gives_identical_outputs(parts, tmp_path):
    cfg, proc = parts
    policy = DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc)
    obs = tiny_obs()
    before = policy.act(obs)
    policy.save_pretrained(tmp_path / "ckpt")
    loaded = DriveVLAPolicy.from_pretrained(tmp_path / "ckpt")
    after = loaded.act(obs)
    assert np.array_equal(before.waypoints, after.waypoints)
    assert np.array_equal(before.target_speeds, after.target_speeds)
    assert before.meta_action == after.meta_action and before.reason == after.reason
    assert policy.explain() == loaded.explain()


def test_action_path_unchanged_when_an_explanation_is_generated_in_between(parts):
    cfg, proc = parts
    policy = DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc)
    a, b = tiny_obs(), tiny_obs(ego=EgoState(0.0, 0.0, 0.0, 9.0))
    plain = [policy.act(a), policy.act(b)]
    first = policy.act(a)
    text = policy.explain()
    second = policy.act(b)
    assert isinstance(text, str)
    assert np.array_equal(plain[0].waypoints, first.waypoints)
    assert np.array_equal(plain[1].waypoints, second.waypoints)
    assert np.array_equal(plain[1].target_speeds, second.target_speeds)


@pytest.mark.parametrize("change, match", [
    ({"images": {"front": np.zeros((60, 100), dtype=np.uint8)}}, "not \\(H, W, 3\\)"),
    ({"images": {"front": np.zeros((60, 100, 4), dtype=np.uint8)}}, "not \\(H, W, 3\\)"),
    ({"images": {"rear": np.zeros((60, 100, 3), dtype=np.uint8)}}, "camera 'front' is missing"),
    ({"instruction": "  "}, "instruction is empty"),
    ({"instruction": "turn left " * 100}, "characters long"),
    ({"ego": EgoState(0.0, 0.0, 0.0, float("nan"))}, "NaN"),
])
def test_bad_inputs_are_named(parts, change, match):
    cfg, proc = parts
    policy = DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc)
    obs = tiny_obs()
    for k, v in change.items():
        object.__setattr__(obs, k, v)
    with pytest.raises(ValueError, match=match):
        policy.act(obs)


def test_wrong_image_size_is_resized_not_silently_misread(parts):
    cfg, proc = parts
    policy = DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc)
    img = np.random.default_rng(2).integers(0, 255, (90, 160, 3), dtype=np.uint8)
    obs = tiny_obs(images={"front": img}, cameras={"front": CameraSpec(width=160, height=90)})
    decision = policy.act(obs)
    assert decision.waypoints.shape == (6, 2)


def test_checkpoint_with_missing_or_mismatched_tensors_is_named(parts, tmp_path):
    from safetensors.torch import load_file, save_file

    cfg, proc = parts
    policy = DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc)
    policy.save_pretrained(tmp_path / "ok")
    state = load_file(str(tmp_path / "ok" / "model.safetensors"))
    key = "head.out.weight"
    broken = dict(state)
    broken.pop(key)
    policy.save_pretrained(tmp_path / "missing")
    save_file(broken, str(tmp_path / "missing" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing tensors.*head.out.weight"):
        DriveVLAPolicy.from_pretrained(tmp_path / "missing")
    bad = dict(state)
    bad[key] = torch.zeros(3, 3)
    policy.save_pretrained(tmp_path / "mismatch")
    save_file(bad, str(tmp_path / "mismatch" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="mismatched shapes.*head.out.weight"):
        DriveVLAPolicy.from_pretrained(tmp_path / "mismatch")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        DriveVLAPolicy.from_pretrained(tmp_path / "nope")
    (tmp_path / "ok" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        DriveVLAPolicy.from_pretrained(tmp_path / "ok")


def test_unknown_config_key_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown DriveVLA config key.*'heads'.*valid keys"):
        DriveVLAConfig.from_dict({"heads": "gru"})
    with pytest.raises(ValueError, match="head='mlp'"):
        DriveVLAConfig.from_dict({"head": "mlp"})


@pytest.mark.parametrize("head, mode", [("regression", "language"), ("gru", "target_point")])
def test_heads_and_navigation_modes_run(parts, head, mode):
    cfg, proc = parts
    cfg2 = cfg.with_overrides({"head": head, "navigation_mode": mode})
    model = DriveVLAModel(cfg2, proc.vocab_size)
    loss, logs = model(proc.batch_from_samples(tiny_samples(2)))
    assert torch.isfinite(loss) and logs["l1_waypoints_m"] > 0
    no_instr = cfg.with_overrides({"use_instruction": False})
    ids, mask = DriveVLAProcessor(no_instr, proc.tokenizer).encode_instruction("Turn left.")
    assert sum(mask) == 1  # only <bos>: the ablation sees no instruction


def test_target_point_mode_refuses_target_points_that_are_not_finite_or_too_far(parts):
    cfg, proc = parts
    tp_proc = DriveVLAProcessor(cfg.with_overrides({"navigation_mode": "target_point"}),
                                proc.tokenizer)
    route = tiny_obs().route
    assert "route" in tp_proc.from_observations([tiny_obs()])
    assert "route" not in proc.from_observations([tiny_obs()])  # language mode: not read
    for bad, named in ((np.inf, "finite"), (1e6, "beyond 10000 m")):
        points = np.zeros((5, 2))
        points[2, 1] = bad
        obs = tiny_obs(route=dataclasses.replace(route, target_points=points))
        with pytest.raises(ValueError, match=named):
            tp_proc.from_observations([obs])


def test_ego_dropout_hides_the_ego_state_in_training_only(parts):
    cfg, proc = parts
    torch.manual_seed(0)
    model = DriveVLAModel(cfg.with_overrides({"ego_dropout": 1.0}), proc.vocab_size)
    batch = proc.batch_from_samples(tiny_samples(2))
    other = dict(batch, ego=batch["ego"] + 3.0)
    model.train()
    with torch.no_grad():
        a, b = model.act(batch), model.act(other)
    assert torch.equal(a.waypoints, b.waypoints)  # every ego state dropped
    model.eval()
    with torch.no_grad():
        a, b = model.act(batch), model.act(other)
    assert not torch.allclose(a.waypoints, b.waypoints)  # inference always sees it
    with pytest.raises(ValueError, match="ego_dropout"):
        cfg.with_overrides({"ego_dropout": 1.5})


def _assert_ego_dropout_keeps_reading(cfg, vocab_size: int, batch, column: int, delta: float):
    """With ego dropout at 1 the motion state is hidden in training, never the odometry: moving
    ego ``column`` still moves the waypoints."""
    torch.manual_seed(0)
    model = DriveVLAModel(cfg, vocab_size).train()
    moved = dict(batch, ego=batch["ego"].clone())
    moved["ego"][:, column] += delta
    with torch.no_grad():
        assert not torch.allclose(model.act(batch).waypoints, model.act(moved).waypoints)


def test_heading_feature_odometry_in_model_processor_and_policy(parts):
    cfg, proc = parts
    hcfg = cfg.with_overrides({"heading_feature": True, "ego_dropout": 1.0})
    assert hcfg.model.ego_dim == 5 and cfg.model.ego_dim == 4
    hproc = DriveVLAProcessor(hcfg, proc.tokenizer)
    samples = tiny_samples(2)
    with pytest.raises(ValueError, match="heading_change"):
        hproc.batch_from_samples(samples)
    batch = hproc.batch_from_samples({**samples, "heading_change": torch.tensor([0.0, 1.5])})
    assert batch["ego"].shape == (2, 5)
    assert batch["ego"][1, 4].item() == pytest.approx(1.0)  # normalised by 1.5 rad
    _assert_ego_dropout_keeps_reading(hcfg, proc.vocab_size, batch, column=4, delta=2.0)
    # the policy integrates the heading tick to tick, across the +-pi seam
    policy = DriveVLAPolicy(DriveVLAModel(hcfg, proc.vocab_size), hproc)
    yaws = [3.0, 3.1, -3.1, -3.0, -3.0]  # +0.1, +0.0832 (across pi), +0.1, +0
    for yaw in yaws:
        policy.act(tiny_obs(ego=EgoState(0.0, 0.0, yaw, 5.0)))
    expected = 0.1 + (2 * np.pi - 6.2) + 0.1
    assert policy._odometry._heading_change == pytest.approx(expected, abs=1e-9)
    policy.explain(tiny_obs(ego=EgoState(0.0, 0.0, -3.0, 5.0)))  # acting again on it adds nothing
    assert policy._odometry._heading_change == pytest.approx(expected, abs=1e-9)
    policy.reset()
    policy.act(tiny_obs(ego=EgoState(0.0, 0.0, 1.0, 5.0)))
    assert policy._odometry._heading_change == 0.0
    with pytest.raises(ValueError, match="yaw"):
        policy.act(tiny_obs(ego=EgoState(0.0, 0.0, float("nan"), 5.0)))


def test_lateral_feature_odometry_in_model_processor_and_policy(parts):
    cfg, proc = parts
    lcfg = cfg.with_overrides({"heading_feature": True, "lateral_feature": True,
                               "ego_dropout": 1.0})
    assert lcfg.model.ego_dim == 6
    assert cfg.with_overrides({"lateral_feature": True}).model.ego_dim == 5
    lproc = DriveVLAProcessor(lcfg, proc.tokenizer)
    samples = {**tiny_samples(3), "heading_change": torch.zeros(3)}
    with pytest.raises(ValueError, match="lateral_offset"):
        lproc.batch_from_samples(samples)
    batch = lproc.batch_from_samples({**samples, "lateral_offset": torch.tensor([0, 3.5, -40])})
    assert batch["ego"].shape == (3, 6)
    # one lane is 1.0; far beyond four lanes (a turn, not a lane change) is clipped to 4
    assert batch["ego"][:, 5].tolist() == pytest.approx([0.0, 1.0, -4.0])
    _assert_ego_dropout_keeps_reading(lcfg, proc.vocab_size, batch, column=5, delta=1.0)
    # the policy measures the move across the heading it started with: driving north
    # (yaw pi/2) and moving 3.5 m west is one lane to the left, whatever the yaw is now
    policy = DriveVLAPolicy(DriveVLAModel(lcfg, proc.vocab_size), lproc)
    for x, y, yaw in [(100.0, 50.0, np.pi / 2), (100.0, 70.0, 1.8), (96.5, 90.0, np.pi / 2)]:
        policy.act(tiny_obs(ego=EgoState(x, y, yaw, 5.0)))
    lateral = policy._odometry._lateral
    assert lateral(tiny_obs(ego=EgoState(96.5, 90.0, 1.0, 5.0))) == pytest.approx(3.5)
    policy.reset()
    policy.act(tiny_obs(ego=EgoState(96.5, 90.0, 0.0, 5.0)))
    assert lateral(tiny_obs(ego=EgoState(120.0, 89.0, 0.0, 5.0))) == pytest.approx(-1)
    with pytest.raises(ValueError, match="pose"):
        policy.act(tiny_obs(ego=EgoState(float("nan"), 0.0, 0.0, 5.0)))


def test_distance_feature_odometer_in_model_processor_and_policy(parts):
    cfg, proc = parts
    dcfg = cfg.with_overrides({"distance_feature": True, "ego_dropout": 1.0})
    assert dcfg.model.ego_dim == 5
    dproc = DriveVLAProcessor(dcfg, proc.tokenizer)
    samples = tiny_samples(3)
    with pytest.raises(ValueError, match="distance_travelled"):
        dproc.batch_from_samples(samples)
    batch = dproc.batch_from_samples({**samples,
                                      "distance_travelled": torch.tensor([0.0, 140.0, 900.0])})
    assert batch["ego"].shape == (3, 5)
    assert batch["ego"][:, 4].tolist() == pytest.approx([0.0, 1.4, 5.0])  # clipped at 500 m
    _assert_ego_dropout_keeps_reading(dcfg, proc.vocab_size, batch, column=4, delta=1.0)
    # the policy sums the path tick to tick: a right angle is 30 + 40 m, not the 50 m chord;
    # acting on the same observation twice adds nothing; reset starts again at 0
    policy = DriveVLAPolicy(DriveVLAModel(dcfg, proc.vocab_size), dproc)
    for x, y in [(0.0, 0.0), (30.0, 0.0), (30.0, 0.0), (30.0, 40.0)]:
        policy.act(tiny_obs(ego=EgoState(x, y, 0.0, 5.0)))
    assert policy._odometry._distance == pytest.approx(70.0)
    policy.reset()
    policy.act(tiny_obs(ego=EgoState(500.0, 0.0, 0.0, 5.0)))
    assert policy._odometry._distance == 0.0
    # a removed option is refused unless at its off value (docs/experiments/removed-options.md)
    with pytest.raises(ValueError, match="odometer_bias_m.*removed"):
        dcfg.with_overrides({"odometer_bias_m": 30.0})
    assert dcfg.with_overrides({"odometer_bias_m": 0.0}) == dcfg
    with pytest.raises(ValueError, match="position"):
        policy.act(tiny_obs(ego=EgoState(float("inf"), 0.0, 0.0, 5.0)))


def test_the_odometer_shift_probe_offsets_every_reading_and_needs_an_odometer(parts,
                                                                              monkeypatch):
    cfg, proc = parts
    dcfg = cfg.with_overrides({"distance_feature": True})
    policy = DriveVLAPolicy(DriveVLAModel(dcfg, proc.vocab_size),
                            DriveVLAProcessor(dcfg, proc.tokenizer))
    seen = []
    inner = policy.action_output
    monkeypatch.setattr(policy, "action_output",
                        lambda obs, odo: seen.append(odo["distance_travelled"]) or inner(obs, odo))
    faulty = FaultyPolicy(policy, PolicyFaults(odometer_bias_m=30.0))
    for _ in range(2):  # the shift holds on every route, reset or not
        faulty.reset()
        for x in (0.0, 4.0):
            faulty.act(tiny_obs(ego=EgoState(x, 0.0, 0.0, 5.0)))
    assert seen == pytest.approx([30.0, 34.0, 30.0, 34.0])
    plain = FaultyPolicy(DriveVLAPolicy(DriveVLAModel(cfg, proc.vocab_size), proc),
                         PolicyFaults(odometer_bias_m=30.0))
    with pytest.raises(ValueError, match="reads no odometer"):
        plain.reset()
    with pytest.raises(PolicyFaultsError, match="keeps no odometer"):
        FaultyPolicy(ScriptedPolicy(), PolicyFaults(odometer_bias_m=-30.0)).reset()
    with pytest.raises(PolicyFaultsError, match="finite"):
        PolicyFaults(odometer_bias_m=float("nan"))


def test_intent_head_conditions_the_action_path_and_learns_from_its_own_loss_only(parts):
    from drivevla.language.intents import NAVIGATION_INTENTS

    cfg, proc = parts
    icfg = cfg.with_overrides({"intent_head": True})
    iproc = DriveVLAProcessor(icfg, proc.tokenizer)
    torch.manual_seed(0)
    model = DriveVLAModel(icfg, proc.vocab_size).eval()
    batch = iproc.batch_from_samples(tiny_samples(2))
    with torch.no_grad():
        out = model.act(batch)
        assert out.intent_logits.shape == (2, len(NAVIGATION_INTENTS))
        model.intent_head.token.bias += 0.5  # the intent token is read by the action path
        assert not torch.allclose(model.act(batch).waypoints, out.waypoints)
    # driving losses never reach the text classifier: without intent labels it gets no
    # gradient; with them it does
    model.train()
    loss, logs = model(batch)
    loss.backward()
    grad = model.intent_head.embed.weight.grad
    assert (grad is None or not grad.any()) and "ce_intent" not in logs
    assert model.intent_head.token.weight.grad.abs().sum() > 0
    model.zero_grad()
    loss, logs = model({**batch, "intent": torch.tensor([0, 3])})
    loss.backward()
    assert model.intent_head.embed.weight.grad.abs().sum() > 0 and logs["ce_intent"] > 0
    with pytest.raises(ValueError, match="intent_head"):
        cfg.with_overrides({"intent_head": True, "backbone_family": "qwen2_vl"})


def test_intent_by_sentence_reads_the_navigation_sentence_whatever_follows(parts):
    from drivevla.language.intents import NAVIGATION_INTENTS
    from drivevla.vla.processor_drivevla import MAX_INTENT_SENTENCES, intent_sentences

    cfg, proc = parts
    with pytest.raises(ValueError, match="intent_by_sentence"):
        cfg.with_overrides({"intent_by_sentence": True})
    scfg = cfg.with_overrides({"intent_head": True, "intent_by_sentence": True,
                               "refusal_word_dropout": 0.0})
    sproc = DriveVLAProcessor(scfg, proc.tokenizer)
    # sentences beyond the limit join the last; an empty text is one empty sentence
    assert intent_sentences("A. B. C. D. E.") == ["A.", "B.", "C.", "D. E."]
    assert intent_sentences("  ") == [""]
    enc = sproc.encode_instructions(["Turn left. Slow down.", ""])
    assert enc["intent_sentence_ids"].shape == (2, MAX_INTENT_SENTENCES, 16)
    assert enc["intent_sentence_mask"].bool().any(-1).tolist() == [
        [True, True, False, False], [True, False, False, False]]
    nav, event = "Turn left at the next junction.", "Stopping: the light is red."
    left, none = NAVIGATION_INTENTS.index("turn_left"), len(NAVIGATION_INTENTS)
    torch.manual_seed(0)
    model = DriveVLAModel(scfg, proc.vocab_size)
    # teach the head, sentence by sentence: the navigation phrase names its intent, the
    # event sentence names none
    opt = torch.optim.Adam(model.intent_head.parameters(), lr=0.01)
    one = sproc.encode_instructions([nav, event])
    for _ in range(60):
        logits = model.intent_head(one["instruction_ids"], one["instruction_mask"])
        loss = F.cross_entropy(logits, torch.tensor([left, none]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        alone, per = model.intent_logits(sproc.encode_instructions([nav]))
        both, per2 = model.intent_logits(sproc.encode_instructions([f"{nav} {event}",
                                                                    f"{event} {nav}"]))
    assert per.shape == (1, MAX_INTENT_SENTENCES, none + 1) and alone.shape == (1, none)
    # the event sentence, before or after, leaves the intent exactly as the phrase alone
    assert torch.allclose(both, alone.expand(2, -1), atol=1e-6)
    assert int(both.argmax(-1)[0]) == left
    # (and not the event sentence's own reading)
    assert not torch.allclose(per2[0, 1, :none], alone[0], atol=1e-3)
    # frames: the loss is that of the sentence naming the route's intent best
    model.train()
    samples = tiny_samples(2)
    samples["instruction"] = [f"{nav} {event}", nav]
    batch = sproc.batch_from_samples(samples)
    second = NAVIGATION_INTENTS.index("roundabout_exit_2")  # a label neither sentence names
    batch["intent"] = torch.tensor([second, -100])
    nav_l, per_l = model.intent_logits(batch)
    expect = -torch.log_softmax(per_l[0, :2].float(), -1)[:, second].max()
    logs: dict = {}
    loss = model.intent_head.loss((nav_l, per_l), batch, logs)
    assert torch.allclose(loss, expect) and logs["ce_intent"] > 0


def test_instruction_word_dropout_hides_words_from_the_lm_in_training_only(parts, monkeypatch):
    from drivevla.vla.processor_drivevla import UNK

    cfg, proc = parts
    dcfg = cfg.with_overrides({"instruction_word_dropout": 0.6})
    torch.manual_seed(0)
    model = DriveVLAModel(dcfg, proc.vocab_size)
    batch = proc.batch_from_samples(tiny_samples(8))
    seen = []
    embed = model.backbone.embed_prefix

    def spy(b):
        seen.append(b["instruction_ids"].clone())
        return embed(b)

    monkeypatch.setattr(model.backbone, "embed_prefix", spy)
    ids, mask = batch["instruction_ids"], batch["instruction_mask"]
    with torch.no_grad():
        model.eval().act(batch)
        model.train().act(batch)
    assert torch.equal(seen[0], ids)  # inference reads every word
    dropped = seen[1] != ids
    assert torch.equal(seen[1][dropped], torch.full_like(seen[1][dropped], UNK))
    assert not dropped[:, 0].any() and not dropped[mask == 0].any()  # <bos>, padding kept
    share = dropped.sum() / (mask[:, 1:] == 1).sum()
    assert 0.4 < float(share) < 0.8
    with pytest.raises(ValueError, match="instruction_word_dropout"):
        cfg.with_overrides({"instruction_word_dropout": 1.0})
