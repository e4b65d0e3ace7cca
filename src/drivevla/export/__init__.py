"""Deployment: DriveVLA's action path and explainer exported to ONNX with their contract
(``deploy.json``), checked on load, and run by ONNX Runtime as a policy (``--policy
onnx:DIR``).

- :mod:`.deploy`: the deployment folder, deploy.json's schema and its checks, the errors;
- :mod:`.graph`: the traced modules, their inputs and outputs, the constants baked in;
- :mod:`.onnx_export`: ``drivevla export onnx``;
- :mod:`.onnx_policy`: the ONNX Runtime session and :class:`OnnxPolicy`;
- :mod:`.parity`: PyTorch vs ONNX Runtime, output by output.

onnx, onnxscript and onnxruntime (the ``export`` extra) are imported lazily where used.
"""
