"""ONNX Runtime as a policy: ``--policy onnx:DIR`` (a folder of ``drivevla export onnx``).

    policy = OnnxPolicy("exports/tiny")     # checks the folder first (deploy.load_deploy)
    decision = policy.act(observation)      # action.onnx in ONNX Runtime
    text = policy.explain()                 # explain_prefill/step.onnx on act's cache

``act`` has :class:`~drivevla.vla.policy.DriveVLAPolicy`'s contract and shares its code on
both sides of the graph: the processor's validation, tokenisation and raw tensors before,
:func:`~drivevla.vla.policy.decision_from_outputs` after. ``explain`` continues from the
latest action pass's KV cache (an output of action.onnx) with the exported explainer, a
small greedy loop over explain_prefill.onnx and explain_step.onnx (:class:`OnnxExplainer`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from drivevla.core.errors import InvalidObservationError
from drivevla.core.types import (
    CameraSpec,
    Decision,
    EgoState,
    HighLevelCommand,
    Observation,
    RouteInfo,
)
from drivevla.export.deploy import (
    ACTION_FILE,
    ENCODER_FILE,
    EXPLAIN_PREFILL_FILE,
    EXPLAIN_STEP_FILE,
    DeploymentError,
    TensorSpec,
    check_feeds,
    check_metadata,
    load_deploy,
)
from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.memory import FrameMemory
from drivevla.vla.odometry import OdometryTracker
from drivevla.vla.policy import (
    ExplanationClock,
    cached_refusal,
    check_finite_inputs,
    decision_from_outputs,
)
from drivevla.vla.processor_drivevla import EOS, DriveVLAProcessor

POLICY_PREFIX = "onnx:"
_ORT_TYPES = {"float32": "tensor(float)", "int64": "tensor(int64)", "uint8": "tensor(uint8)"}


def onnxruntime_module() -> Any:
    # lazy: onnxruntime is the optional `export` extra, needed only when a folder is run
    try:
        import onnxruntime
    except ImportError as exc:
        raise DeploymentError("running an exported policy needs onnxruntime: pip install "
                              "'drivevla[export]'") from exc
    return onnxruntime


def open_session(path: Path, threads: int | None, providers: list[str]) -> Any:
    """An ONNX Runtime session of ``path``; a file it cannot load raises
    :class:`DeploymentError` naming it."""
    ort = onnxruntime_module()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # its worker threads would spin after each run, taking the cores the simulator, the
    # controller and the explainer need between ticks (measured: explain() 1.6x slower)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own classes (InvalidProtobuf, Fail)
        raise DeploymentError(f"{path}: ONNX Runtime cannot load it (corrupted or not an "
                              f"ONNX model): {exc}") from exc


class OnnxExplainer:
    """Greedy explanation tokens from action.onnx's cache outputs: explain_prefill.onnx once
    (``<expl>`` and, grounded, the decided reason), then explain_step.onnx per token until
    ``<eos>`` or ``max_tokens`` (as :meth:`DriveVLAModel.generate_explanation`)."""

    def __init__(self, prefill: Any, step: Any, max_tokens: int) -> None:
        self.prefill, self.step, self.max_tokens = prefill, step, max_tokens
        self.past = [a.name for a in prefill.get_inputs()][1:]  # attention_mask, past.*

    def generate(self, action: dict[str, np.ndarray]) -> list[int]:
        """Token ids (without ``<eos>``) of the explanation of one action pass's outputs."""
        return list(self.stream(action))

    def stream(self, action: dict[str, np.ndarray]) -> Iterator[int]:
        """:meth:`generate`'s token ids one at a time, as they are generated."""
        out = self.prefill.run(None, {"reason": action["reason"],
                                      **{name: action[name] for name in self.past}})
        for i in range(self.max_tokens):
            token = int(out[0][0].argmax())
            if token == EOS:
                return
            yield token
            if i + 1 < self.max_tokens:
                out = self.step.run(None, {"token": np.array([[token]], dtype=np.int64),
                                           **dict(zip(self.past, out[1:], strict=True))})


class ActionGraph:
    """The action path of a checked deployment: deploy.json's inputs and outputs, and a
    session running them (ONNX Runtime here, TensorRT in :mod:`.tensorrt_policy`)."""

    def __init__(self, deploy: dict[str, Any], session: Any, path: Path) -> None:
        self.deploy, self.session, self.path = deploy, session, path
        self.inputs = [TensorSpec.from_dict(d) for d in deploy["action"]["inputs"]]
        self.outputs = [TensorSpec.from_dict(d) for d in deploy["action"]["outputs"]]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The outputs by name of one tick; inputs of a wrong name, shape or dtype raise
        :class:`~drivevla.export.deploy.DeploymentInputError` naming them."""
        check_feeds(self.inputs, feeds, str(self.path))
        names = [s.name for s in self.outputs]
        return dict(zip(names, self.session.run(names, feeds), strict=True))

    def set_threads(self, threads: int | None) -> None:
        raise NotImplementedError


class OnnxActionModel(ActionGraph):
    """action.onnx of a checked deployment folder in an ONNX Runtime session."""

    def __init__(self, directory: str | Path, providers: list[str] | None = None,
                 threads: int | None = None) -> None:
        self.directory = Path(directory)
        self.providers = providers or ["CPUExecutionProvider"]
        super().__init__(load_deploy(self.directory), None, self.directory / ACTION_FILE)
        self.set_threads(threads)
        check_metadata(self.deploy, self.session.get_modelmeta().custom_metadata_map,
                       str(self.path))
        self._check_signature()

    def set_threads(self, threads: int | None) -> None:
        """(Re)open the session with ``threads`` intra-op threads (None: ONNX Runtime's
        default, one per physical core)."""
        self.session = open_session(self.path, threads, self.providers)
        self.explainer = OnnxExplainer(
            *(open_session(self.directory / name, threads, self.providers)
              for name in (EXPLAIN_PREFILL_FILE, EXPLAIN_STEP_FILE)),
            int(self.deploy["explain"]["max_tokens"]))

    def _check_signature(self) -> None:
        """The session's inputs and outputs are deploy.json's, name by name."""
        for kind, specs, args in (("input", self.inputs, self.session.get_inputs()),
                                  ("output", self.outputs, self.session.get_outputs())):
            got = [(a.name, a.type, [int(d) if isinstance(d, int) else d for d in a.shape])
                   for a in args]
            want = [(s.name, _ORT_TYPES[s.dtype], list(s.shape)) for s in specs]
            if got != want:
                raise DeploymentError(f"{self.path}: its {kind}s {got} are not deploy.json's "
                                      f"{want}")


class TickState:
    """What the action graph reads beyond the processor's tensors, kept between ticks: the
    pretrained encoder's token states (``instruction.onnx``, run once per distinct
    instruction, not every tick) and the memory's summaries of earlier ticks (the graph's
    ``frame_summary`` outputs, kept as :class:`~drivevla.vla.memory.FrameMemory` keeps the
    PyTorch policy's)."""

    MAX_STATES = 256  # distinct instructions whose states are kept

    def __init__(self, memory: FrameMemory | None, encoder: Any | None) -> None:
        self.memory, self.encoder = memory, encoder
        self._states: dict[bytes, np.ndarray] = {}

    @classmethod
    def of_deploy(cls, deploy: dict[str, Any], stride: int, encoder: Any | None
                  ) -> TickState:
        """The state a deployment's action graph needs (its memory's shape from deploy.json)."""
        inputs = {d["name"]: d for d in deploy["action"]["inputs"]}
        memory = None
        if "memory_summaries" in inputs:
            _, frames, channels = inputs["memory_summaries"]["shape"]
            memory = FrameMemory(int(frames), stride, int(channels))
        return cls(memory, encoder)

    def reset(self) -> None:
        if self.memory is not None:
            self.memory.reset()

    def feeds(self, raw: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """The tick's ``instruction_states`` and ``memory_*`` inputs (those the graph has)."""
        out: dict[str, np.ndarray] = {}
        if self.encoder is not None:
            ids, mask = raw["instruction_ids"].numpy(), raw["instruction_mask"].numpy()
            key = ids.tobytes() + mask.tobytes()
            if key not in self._states:
                if len(self._states) >= self.MAX_STATES:
                    self._states.clear()
                self._states[key] = self.encoder.run(
                    None, {"instruction_ids": ids, "instruction_mask": mask})[0]
            out["instruction_states"] = self._states[key]
        if self.memory is not None:
            kept = self.memory.inputs()
            out["memory_summaries"] = kept["memory_summaries"].numpy()
            out["memory_current"] = kept["memory_current"].numpy().astype(np.int64)
        return out

    def keep(self, outputs: dict[str, np.ndarray]) -> None:
        """After a tick that drove: keep its summary for the memory."""
        if self.memory is not None:
            self.memory.keep(torch.from_numpy(np.asarray(outputs["frame_summary"][0])))


class OnnxPolicy(ExplanationClock):
    """An exported DriveVLA in ONNX Runtime under the common policy contract."""

    def __init__(self, directory: str | Path, explain_every: int = 0,
                 providers: list[str] | None = None, threads: int | None = None,
                 name: str | None = None, action_model: ActionGraph | None = None) -> None:
        self.directory = Path(directory)
        # another runtime's graphs of this folder (TensorRT's engines), or ONNX Runtime's
        self.action_model = action_model or OnnxActionModel(self.directory, providers, threads)
        self.deploy = self.action_model.deploy
        self.config = DriveVLAConfig.load(self.directory)
        self.processor = DriveVLAProcessor.load(self.directory, self.config)
        self.name = name or f"{POLICY_PREFIX}{self.directory}"
        self.explain_every = explain_every
        self._cameras = {c["name"]: (int(c["height"]), int(c["width"]))
                         for c in self.deploy["cameras"]}
        self._odometry = OdometryTracker(self.config.model.odometry)
        self._refusals: dict[str, bool] = {}  # instruction text -> refused (refuses())
        encoder = (open_session(self.directory / ENCODER_FILE, threads,
                                providers or ["CPUExecutionProvider"])
                   if self.deploy.get("instruction_encoder") else None)
        self.tick_state = TickState.of_deploy(self.deploy, self.config.model.memory_stride,
                                              encoder)
        self.reset()

    def set_threads(self, threads: int | None) -> None:
        """ONNX Runtime's intra-op threads for the action path (``bench latency --threads``)."""
        self.action_model.set_threads(threads)

    def reset(self, privileged: Any | None = None) -> None:  # learned: ignores ground truth
        self._last_outputs: dict[str, np.ndarray] | None = None
        self._tick, self._last_explanation = 0, None
        self._odometry.reset()
        self.tick_state.reset()

    def act(self, obs: Observation) -> Decision:
        out = self.action_outputs(obs, self._odometry.read(obs))
        self._last_outputs = out
        self.tick_state.keep(out)
        return decision_from_outputs(self.config, out["waypoints"][0], out["target_speeds"][0],
                                     int(out["meta_action_logits"][0].argmax()),
                                     int(out["reason"][0]), self.clocked_explanation())

    def action_outputs(self, obs: Observation, odometry: dict[str, float]
                       ) -> dict[str, np.ndarray]:
        """action.onnx's outputs by name for one observation (validated and tokenised by the
        checkpoint's processor); ``odometry``: the readings of the model's channels."""
        self._check_cameras(obs)
        raw = self.processor.raw_inputs([obs], [odometry])
        check_finite_inputs(raw, obs)
        kept = self.tick_state.feeds(raw)
        return self.action_model.run({s.name: kept[s.name] if s.name in kept
                                      else raw[s.name].numpy()
                                      for s in self.action_model.inputs})

    def refuses(self, instruction: str) -> bool:
        """Whether the checkpoint's text-only refusal head refuses ``instruction`` (False
        without one), as :meth:`DriveVLAPolicy.refuses`: the head reads the instruction alone,
        so action.onnx's ``refusal_probability`` on a neutral tick with this text is its
        answer. Cached per text (one action pass per new text)."""
        if not self.config.model.refusal_head:
            return False

        def probability() -> float:
            cams = {n: CameraSpec(name=n, width=w, height=h)
                    for n, (h, w) in self._cameras.items()}
            images = {n: np.zeros((c.height, c.width, 3), np.uint8) for n, c in cams.items()}
            route = RouteInfo(np.zeros((self.config.model.route_targets, 2)),
                              HighLevelCommand.LANE_FOLLOW, "cruise", 0.0)
            neutral = Observation(images, cams, EgoState(0.0, 0.0, 0.0, 0.0), route,
                                  instruction, 0.0)
            readings = {name: 0.0 for name in self.config.model.odometry}
            return float(self.action_outputs(neutral, readings)["refusal_probability"][0])

        return cached_refusal(self._refusals, instruction, probability,
                              float(self.config.inference.refusal_threshold))

    def _check_cameras(self, obs: Observation) -> None:
        for name, (height, width) in self._cameras.items():
            image = obs.images.get(name)
            if image is not None and tuple(np.shape(image)[:2]) != (height, width):
                raise InvalidObservationError(
                    f"camera {name!r}: image {np.shape(image)[1]}x{np.shape(image)[0]} (WxH); "
                    f"{self.directory} was exported for {width}x{height} (re-export it with "
                    f"--camera-size {np.shape(image)[1]}x{np.shape(image)[0]})")

    def explain(self, obs: Observation | None = None) -> str:
        """The explanation of the latest decision (or of ``obs``, acting on it first), from
        that action pass's cache by the exported explainer; it never changes the decision."""
        if obs is not None:
            self.act(obs)
        if self._last_outputs is None:
            raise RuntimeError("explain() needs an observation first (call act or pass obs)")
        return self.explain_outputs(self._last_outputs)

    def explanation_tokens(self) -> Iterator[int]:
        """The latest decision's explanation token id by token id, as generated (as
        :meth:`DriveVLAPolicy.explanation_tokens`)."""
        if self._last_outputs is None:
            raise RuntimeError("explanation_tokens() needs an act() first")
        return self.action_model.explainer.stream(self._last_outputs)

    def explain_outputs(self, outputs: dict[str, np.ndarray]) -> str:
        """The explanation text of one :meth:`action_outputs` result."""
        return self.processor.decode(self.action_model.explainer.generate(outputs))


def onnx_policy_dir(name: str) -> Path | None:
    """The folder of an ``onnx:DIR`` policy name, or None for any other name."""
    return Path(name[len(POLICY_PREFIX):]) if name.startswith(POLICY_PREFIX) else None
