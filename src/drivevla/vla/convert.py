"""One-shot conversion of a DriveVLA checkpoint saved before the sectioned config:

    python -m drivevla.vla.convert DIR [DIR ...]

- ``config.json``: the flat keys are mapped into the ``model`` / ``inference`` / ``loss``
  sections (:data:`~drivevla.vla.configuration_drivevla.LEGACY_KEYS`) and the label
  vocabularies are written in: a checkpoint without them was trained with today's lists.
- ``model.safetensors``: tensors renamed to today's module tree
  (:data:`~drivevla.vla.modeling_drivevla.LEGACY_TENSOR_PREFIXES`: ``reason_embed.*`` ->
  ``explanation.*``, ``intent_proj.*`` -> ``intent_head.token.*``); the values and the file's
  metadata are kept, so the converted checkpoint gives the same outputs.

Loading never needs this: ``DriveVLAPolicy.from_pretrained`` reads old configs and renames old
tensors on the fly. Converting makes the files say what the code means. A converted checkpoint
is left as it is (running twice changes nothing).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

from drivevla.vla.configuration_drivevla import DriveVLAConfig
from drivevla.vla.policy import WEIGHTS_NAME, upgrade_state_dict

logger = logging.getLogger(__name__)


def convert_checkpoint(directory: str | Path) -> dict[str, bool]:
    """Rewrite ``directory``'s config.json and model.safetensors in today's layout; which of
    the two changed."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    directory = Path(directory)
    path = directory / "config.json"
    old = json.loads(path.read_text(encoding="utf-8"))
    config = DriveVLAConfig.load(directory)
    new = config.to_dict()
    changed = {"config": old != new, "weights": False}
    weights = directory / WEIGHTS_NAME
    with safe_open(str(weights), framework="pt") as f:
        metadata = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118  (safe_open has no iter)
    renamed = upgrade_state_dict(state)
    if list(renamed) != list(state):
        tmp = weights.with_suffix(".tmp")
        save_file(renamed, str(tmp), metadata=metadata)
        shutil.copymode(weights, tmp)
        tmp.replace(weights)
        changed["weights"] = True
    if changed["config"]:
        config.save(directory)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivevla.vla.convert",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("directories", nargs="+", help="DriveVLA checkpoint directories")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for d in args.directories:
        changed = convert_checkpoint(d)
        logger.info("%s: config %s, weights %s", d,
                    "converted" if changed["config"] else "already current",
                    "renamed" if changed["weights"] else "already current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
