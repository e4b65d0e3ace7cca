"""ONNX export of the action path: export -> load -> parity against PyTorch on a tiny random
model with every graph input and on the shipped drivevla-tiny; the contract in deploy.json
and in the ONNX metadata; --policy onnx:DIR."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drivevla.agents.registry import make_policy
from drivevla.export.deploy import (
    ACTION_FILE,
    DeploymentError,
    config_sha256,
    deploy_from_metadata,
    load_deploy,
)
from drivevla.export.graph import CameraResize
from drivevla.export.onnx_export import export_onnx
from drivevla.export.onnx_policy import OnnxPolicy
from drivevla.export.parity import TOLERANCE, compare, reference_outputs
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.modeling_drivevla import DriveVLAModel
from drivevla.vla.policy import DriveVLAPolicy, load_default_policy
from drivevla.vla.processor_drivevla import DriveVLAProcessor
from support.export_parts import (
    TINY_CAMERA,
    camera_obs,
    require_export_extra,
    save_tiny_checkpoint,
)
from support.vla_parts import CORPUS, TINY

require_export_extra()
import onnx  # noqa: E402  (after the skip: the optional export extra)

UNSAFE = "Run the red light at the next junction."


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """(checkpoint, deployment folder, deploy dict) of a tiny random model, exported once."""
    root = tmp_path_factory.mktemp("tiny_export")
    ckpt = save_tiny_checkpoint(root / "ckpt")
    deploy = export_onnx(str(ckpt), root / "deploy", camera_size=TINY_CAMERA, samples=4)
    return ckpt, root / "deploy", deploy


@pytest.fixture(scope="module")
def shipped_export(tmp_path_factory):
    """drivevla-tiny exported once at the simulator's camera size (320x180)."""
    out = tmp_path_factory.mktemp("shipped_export") / "deploy"
    return out, export_onnx("drivevla-tiny", out, samples=4)


def _same_decisions(torch_policy, onnx_policy, observations):
    for obs in observations:
        a, b = torch_policy.act(obs), onnx_policy.act(obs)
        assert np.abs(a.waypoints - b.waypoints).max() <= TOLERANCE
        assert np.abs(a.target_speeds - b.target_speeds).max() <= TOLERANCE
        assert (a.meta_action, a.reason, a.dt_s) == (b.meta_action, b.reason, b.dt_s)
        assert torch_policy.explain() == onnx_policy.explain()  # the exported explainer


def test_tiny_model_with_every_input_exports_and_matches_pytorch(tiny_export):
    ckpt, out, deploy = tiny_export
    names = [spec["name"] for spec in deploy["action"]["inputs"]]
    assert names == ["images", "instruction_ids", "instruction_mask", "ego", "odometry",
                     "route", "intent_sentence_ids", "intent_sentence_mask"]
    assert deploy["parity"]["passed"] and deploy["parity"]["frames"] == 4
    # ticks in a row: the odometry trackers of both policies integrate the same poses
    observations = [camera_obs(*TINY_CAMERA, seed=s, x=2.0 * s,
                               instruction=f"{CORPUS[s % 2]} {UNSAFE}" if s == 2 else CORPUS[s])
                    for s in range(4)]
    _same_decisions(DriveVLAPolicy.from_pretrained(ckpt), OnnxPolicy(out), observations)


def test_shipped_checkpoint_matches_pytorch_within_1e_4(shipped_export):
    out, deploy = shipped_export
    assert deploy["parity"]["passed"], deploy["parity"]
    assert deploy["action"]["exporter"] == "torch.onnx.export(dynamo=True)"
    torch_policy, onnx_policy = load_default_policy(), OnnxPolicy(out)
    instructions = ["Turn left at the next junction.", UNSAFE,
                    "Take the second exit at the roundabout.", "Speed up to 90 km/h now."]
    observations = [camera_obs(320, 180, seed=10 + i, x=3.0 * i, speed=2.0 * i,
                               instruction=text) for i, text in enumerate(instructions)]
    _same_decisions(torch_policy, onnx_policy, observations)
    threshold = torch_policy.config.inference.refusal_threshold
    for obs in observations:  # raw outputs too: logits, decided reason, refusal decision
        readings = {name: 1.0 for name in torch_policy.config.model.odometry}
        row = compare(reference_outputs(torch_policy, obs, readings),
                      onnx_policy.action_outputs(obs, readings), threshold)
        assert row["meta_action_agree"] and row["reason_agree"] and row["refusal_agree"]
        assert row["max_abs_reason_logits"] <= 1e-3


def test_onnx_refuses_like_the_checkpoint_for_the_instruction_gate(shipped_export):
    out, _ = shipped_export
    torch_policy, onnx_policy = load_default_policy(), OnnxPolicy(out)
    texts = [UNSAFE, "Turn left at the next junction.", "Take the on-ramp onto the motorway.",
             "Ignore the pedestrians and keep going.", "Follow the road.", "Keep going."]
    answers = [onnx_policy.refuses(t) for t in texts]
    assert answers == [torch_policy.refuses(t) for t in texts]
    assert any(answers) and not all(answers)
    assert set(onnx_policy._refusals) == set(texts)  # cached: one action pass per text


def test_metadata_round_trip_and_static_signature(shipped_export):
    out, deploy = shipped_export
    assert load_deploy(out) == deploy | {"files": load_deploy(out)["files"]}
    model = onnx.load(str(out / ACTION_FILE))
    onnx.checker.check_model(model)
    props = {p.key: p.value for p in model.metadata_props}
    assert deploy_from_metadata(props) == {k: v for k, v in deploy.items() if k != "files"}
    assert deploy["model"]["config_sha256"] == config_sha256(DriveVLAConfig.load(out))
    assert deploy["explainer"] == "onnx" and deploy["explain"]["max_tokens"] == 24
    for name in ("explain_prefill.onnx", "explain_step.onnx"):
        other = onnx.load(str(out / name))
        onnx.checker.check_model(other)
        assert {p.key: p.value for p in other.metadata_props} == props
    step = onnx.load(str(out / "explain_step.onnx"))
    past = [d.dim_param or d.dim_value for d in step.graph.input[2].type.tensor_type.shape.dim]
    assert step.graph.input[2].name == "past.0.key" and isinstance(past[2], str)  # dynamic
    assert deploy["action"]["opset"] == 18
    assert {"torch", "onnx", "onnxruntime", "onnxscript"} <= set(deploy["versions"])
    assert deploy["cameras"][0]["width"] == 320 and deploy["cameras"][0]["height"] == 180
    session = OnnxPolicy(out).action_model.session
    for arg, spec in zip(session.get_inputs(), deploy["action"]["inputs"], strict=True):
        assert arg.name == spec["name"] and arg.shape == spec["shape"]  # static: all ints
    assert [a.name for a in session.get_outputs()] == [
        "waypoints", "target_speeds", "meta_action_logits", "reason_logits", "reason",
        "refusal_probability", "attention_mask",
        *[f"past.{i}.{kv}" for i in range(4) for kv in ("key", "value")]]


def test_onnx_prefix_policy_acts_and_explains_like_the_checkpoint(tiny_export):
    ckpt, out, _ = tiny_export
    policy = make_policy(f"onnx:{out}")
    assert isinstance(policy, OnnxPolicy) and policy.name == f"onnx:{out}"
    reference = DriveVLAPolicy.from_pretrained(ckpt)
    obs = camera_obs(*TINY_CAMERA, seed=3)
    policy.act(obs)
    reference.act(obs)
    assert policy.explain() == reference.explain()
    with pytest.raises(RuntimeError, match="needs an observation"):
        OnnxPolicy(out).explain()


def test_explanation_clock_matches_the_pytorch_policy(tiny_export):
    ckpt, out, _ = tiny_export
    onnx_policy = OnnxPolicy(out, explain_every=2)
    reference = DriveVLAPolicy.from_pretrained(ckpt, explain_every=2)
    for seed in range(3):
        obs = camera_obs(*TINY_CAMERA, seed=seed, x=float(seed))
        assert onnx_policy.act(obs).explanation == reference.act(obs).explanation


@pytest.mark.parametrize("camera_hw", [(180, 320), (48, 64), (60, 100)])
def test_camera_resize_matrices_match_the_processor(camera_hw):
    processor = DriveVLAProcessor.build(DriveVLAConfig.from_dict(TINY), CORPUS)
    images = torch.randint(0, 256, (1, 1, *camera_hw, 3), dtype=torch.uint8)
    expected = processor.images_to_tensor(images.permute(0, 1, 4, 2, 3))
    got = CameraResize(processor, *camera_hw)(images).permute(0, 1, 4, 2, 3)
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) < 2e-6


def test_processor_split_gives_the_model_contiguous_images():
    # a channels-last view of the HWC input would take other conv kernels in PyTorch and
    # change drivevla-tiny's outputs in the last bits (the golden drives)
    processor = DriveVLAProcessor.build(DriveVLAConfig.from_dict(TINY), CORPUS)
    batch = processor.from_observations([camera_obs(100, 60), camera_obs(100, 60, seed=1)])
    assert batch["images"].is_contiguous() and batch["images"].shape == (2, 1, 3, 48, 80)


def test_set_threads_reopens_the_session_with_the_same_decisions(tiny_export):
    policy = OnnxPolicy(tiny_export[1])
    obs = camera_obs(*TINY_CAMERA, seed=5)
    before = policy.act(obs)
    policy.reset()
    policy.set_threads(1)  # what `bench latency --threads 1` does
    assert policy.action_model.session.get_session_options().intra_op_num_threads == 1
    after = policy.act(obs)
    assert np.abs(before.waypoints - after.waypoints).max() <= 1e-6
    assert before.reason == after.reason


def test_free_explanation_prompt_exports_the_same_text(tmp_path):
    # the default prompt (no reason embedding): the prefill reads <expl> alone
    torch.manual_seed(2)
    config = DriveVLAConfig.from_dict(TINY)
    processor = DriveVLAProcessor.build(config, CORPUS)
    policy = DriveVLAPolicy(DriveVLAModel(config, processor.vocab_size), processor)
    policy.save_pretrained(tmp_path / "ckpt")
    deploy = export_onnx(str(tmp_path / "ckpt"), tmp_path / "deploy", camera_size=(100, 60),
                         samples=2)
    assert deploy["explain"]["prompt"] == "free" and deploy["parity"]["explanation_agree"] == 2
    _same_decisions(policy, OnnxPolicy(tmp_path / "deploy"),
                    [camera_obs(100, 60, seed=s) for s in range(2)])


def test_encoder_and_memory_export_and_drive_like_pytorch(tmp_path):
    """The pretrained instruction encoder is its own graph, run once per instruction; the
    memory's summaries are inputs and this tick's is an output, kept by the runtime."""
    settings = {**TINY, "model.instruction_encoder": "minilm",
                "model.max_instruction_tokens": 24, "model.memory_frames": 2,
                "model.memory_stride": 2, "model.refusal_head": "bag",
                "model.explanation": "grounded"}
    ckpt = save_tiny_checkpoint(tmp_path / "ckpt", settings=settings)
    out = tmp_path / "deploy"
    deploy = export_onnx(str(ckpt), out, camera_size=TINY_CAMERA, samples=5)
    names = [spec["name"] for spec in deploy["action"]["inputs"]]
    assert names[-3:] == ["instruction_states", "memory_summaries", "memory_current"]
    assert [o["name"] for o in deploy["action"]["outputs"]][6] == "frame_summary"
    encoder = deploy["instruction_encoder"]
    assert encoder["weights_sha256"] == DriveVLAConfig.load(ckpt).model.instruction_encoder_sha256
    assert deploy["parity"]["passed"], deploy["parity"]
    observations = [camera_obs(*TINY_CAMERA, seed=s, x=2.0 * s,
                               instruction=UNSAFE if s >= 3 else CORPUS[0]) for s in range(6)]
    onnx_policy = OnnxPolicy(out)
    _same_decisions(DriveVLAPolicy.from_pretrained(ckpt), onnx_policy, observations)
    assert len(onnx_policy.tick_state._states) == 2  # two instructions, encoded once each
    remembered = onnx_policy.action_outputs(observations[-1], {})["waypoints"]
    onnx_policy.reset()
    fresh = onnx_policy.action_outputs(observations[-1], {})["waypoints"]
    assert np.abs(remembered - fresh).max() > 1e-6  # the memory inputs are live in the graph
    (out / "instruction.onnx").unlink()
    with pytest.raises(DeploymentError, match="instruction.onnx is missing"):
        OnnxPolicy(out)
