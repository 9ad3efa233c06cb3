"""Training checkpoints and self-contained model files, written atomically and loaded without running code.

Both are ``torch.save`` dicts of tensors and plain values, read back with
``torch.load(weights_only=True)``, which refuses anything that would execute code.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from . import __version__

MODEL_FORMAT = "asr-model"
MODEL_FORMAT_VERSION = 1
CHECKPOINT_FORMAT = "asr-checkpoint"


class ModelFileError(ValueError):
    """A file that is not a usable model file or checkpoint."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, flush it to disk, then rename over ``path``.

    A crash at any moment leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            torch.save(obj, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - pickle, zip and unpickler errors all mean "not ours"
        raise ModelFileError(f"{path}: not a model file or checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(data, dict) or data.get("format") not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise ModelFileError(f"{path}: not an asr model file or checkpoint")
    if data.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {data.get('format_version')} (written by asr {data.get('asr_version')}); "
            f"this asr {__version__} reads version {MODEL_FORMAT_VERSION}"
        )
    return data


def model_payload(model: torch.nn.Module, config: dict, characters: list[str], extra: dict | None = None) -> dict:
    """The self-contained model-file dict: weights, config (model, features, ...), vocabulary, version."""
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "asr_version": __version__,
        "config": config,
        "vocabulary": list(characters),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **(extra or {}),
    }


def load_model_file(path: str | Path) -> dict:
    """Read a model file (or a checkpoint, whose model part is used) as a model-file dict."""
    data = _load(path)
    if data["format"] == CHECKPOINT_FORMAT:
        data = data["model"]
    return data


def load_checkpoint(path: str | Path) -> dict:
    """Read a training checkpoint."""
    data = _load(path)
    if data["format"] != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path}: a model file, not a training checkpoint")
    return data
