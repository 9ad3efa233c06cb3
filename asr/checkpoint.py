"""Training checkpoints and self-contained model files, written atomically and loaded without running code.

Both are ``torch.save`` dicts of tensors and plain values, read back with
``torch.load(weights_only=True)``, which refuses anything that would execute code.
"""

from __future__ import annotations

import os
import pickle
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


TEMPORARY_SUFFIX = ".tmp"  # atomic_save's files before their rename: ".NAME.RANDOM.tmp"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete what a killed :func:`atomic_save` left in ``folder`` (``.NAME.*.tmp`` beside files it
    writes); returns what was deleted. Call it only when no other process is writing there."""
    folder = Path(folder)
    found = {*folder.glob(f".*.pt.*{TEMPORARY_SUFFIX}"), *folder.glob(f".*.pt{TEMPORARY_SUFFIX}")}  # also train's .model.pt.tmp
    stale = sorted(p for p in found if p.is_file())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, flush it to disk, then rename over ``path``.

    A crash at any moment leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            torch.save(obj, out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp's 0600 would keep the file from its group
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():  # also a symlink loop or a dangling link
        raise ModelFileError(f"{path}: no such file")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder, not a model file")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a regular file (a FIFO, device or socket), so not a model file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Unsupported global" not in str(error):  # torch's words for a pickled object, not for garbage
            raise ModelFileError(f"{path}: not a model file or checkpoint (not a torch.save file)") from None
        # torch's own text here suggests weights_only=False, which would run the file's code
        raise ModelFileError(f"{path}: not a safe model file: it holds Python objects other than tensors and plain values, "
                             "which could run code when loaded, so it is refused") from None
    except Exception as error:  # noqa: BLE001 - zip and read errors all mean "not ours"
        reason = str(error).splitlines()[0] if str(error) else ""
        raise ModelFileError(f"{path}: not a model file or checkpoint ({type(error).__name__}: {reason})") from None
    if not isinstance(data, dict) or data.get("format") not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise ModelFileError(f"{path}: not an asr model file or checkpoint")
    if data.get("format_version") != MODEL_FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {data.get('format_version')} (written by asr {data.get('asr_version')}); "
            f"this asr {__version__} reads version {MODEL_FORMAT_VERSION}"
        )
    return data


def _check_model_part(path: Path, data: dict) -> dict:
    """``data`` (a model-file dict) if its parts have the types a model needs, else ModelFileError."""
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: its model part is not a mapping")
    expected = {"config": dict, "vocabulary": list, "state_dict": dict}
    for key, kind in expected.items():
        if not isinstance(data.get(key), kind):
            found = "missing" if key not in data else f"a {type(data[key]).__name__}"
            raise ModelFileError(f"{path}: {key} must be a {kind.__name__}, but it is {found}")
    if not all(isinstance(c, str) and len(c) == 1 for c in data["vocabulary"]):
        raise ModelFileError(f"{path}: vocabulary must be a list of single characters")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data["state_dict"].items()):
        raise ModelFileError(f"{path}: state_dict must map names to tensors")
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
        data = data.get("model")
    return _check_model_part(Path(path), data)


def load_checkpoint(path: str | Path) -> dict:
    """Read a training checkpoint."""
    data = _load(path)
    if data["format"] != CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path}: a model file, not a training checkpoint")
    return data
