"""Training checkpoints and self-contained model files, written atomically and loaded without running code.

Both are ``torch.save`` dicts of tensors and plain values, read back with
``torch.load(weights_only=True)``, which refuses anything that would execute code.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from . import files
from .version import __version__

MODEL_FORMAT = "asr-model"
MODEL_FORMAT_VERSION = 1
CHECKPOINT_FORMAT = "asr-checkpoint"


class ModelFileError(ValueError):
    """A file that is not a usable model file or checkpoint."""


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries of model files and checkpoints (``.NAME.pt*.tmp``) a killed write
    left in ``folder``; returns what was deleted. Only when no other process is writing there."""
    return files.remove_stale_temporaries(folder, "*.pt")


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to ``path`` through :func:`asr.files.atomic_write`: a crash at any moment
    leaves either the old file or the new one, never a torn one."""
    with files.atomic_write(path) as out:
        torch.save(obj, out)


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
        # torch's words for a pickled object ("Unsupported global: GLOBAL x.y", since 2.x "unsupported
        # GLOBAL x.y"), not for garbage; its own advice, weights_only=False, would run the file's code
        named = re.search(r"unsupported global:? (?:GLOBAL )?([\w.]+)", str(error), re.IGNORECASE)
        if named is None:
            raise ModelFileError(f"{path}: not a model file or checkpoint (not a torch.save file)") from None
        raise ModelFileError(
            f"{path}: not a safe model file: it holds Python objects other than tensors and plain values "
            f"({named.group(1)}), which could run code when loaded, so it is refused"
        ) from None
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


DECODING_FILES = ("lm", "lexicon", "hotwords")  # decoding settings that name files a model file carries inside it


def decoding_files(decoding: dict) -> dict:
    """The files ``decoding`` (a decoding config as a dict) names (its LM and lexicon), read into
    a model file's ``decoding_files``: {"lm": {"name": file name, "data": uint8 tensor}, ...}, so that
    a tuned model keeps working when it is moved or the originals are deleted."""
    carried = {}
    for key in DECODING_FILES:
        if decoding.get(key):
            path = Path(decoding[key])
            data = bytearray(path.read_bytes())
            carried[key] = {
                "name": path.name,
                "data": torch.frombuffer(data, dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8),
            }
    return carried


def decoding_cache() -> Path:
    """Where the LM and lexicon carried in model files are unpacked: ``$ASR_CACHE``, else
    ``$XDG_CACHE_HOME/asr`` or ``~/.cache/asr``, else the temporary folder."""
    if os.environ.get("ASR_CACHE"):
        return Path(os.environ["ASR_CACHE"])
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return (
        home / "asr"
        if os.access(home if home.exists() else home.parent, os.W_OK)
        else Path(tempfile.gettempdir()) / "asr"
    )


def unpack_decoding_files(path: str | Path, data: dict) -> dict[str, str]:
    """The paths of the files model file ``path``'s ``decoding_files`` carries, written to
    :func:`decoding_cache` under their content's hash (once; a torn or changed copy is rewritten).
    Raises :class:`ModelFileError` if they are not what :func:`decoding_files` writes."""
    carried = data.get("decoding_files", {})
    if not isinstance(carried, dict) or not set(carried) <= set(DECODING_FILES):
        raise ModelFileError(f"{path}: decoding_files must map {', '.join(DECODING_FILES)} to files")
    unpacked = {}
    for key, entry in carried.items():
        content = entry.get("data") if isinstance(entry, dict) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(content, torch.Tensor) or content.dtype != torch.uint8 or content.dim() != 1:
            raise ModelFileError(f"{path}: decoding_files.{key} must hold its bytes as a 1-D uint8 tensor")
        if not isinstance(name, str):
            raise ModelFileError(f"{path}: decoding_files.{key} must have a file name")
        raw = content.numpy().tobytes()
        digest = hashlib.sha256(raw).hexdigest()[:16]
        target = decoding_cache() / f"{digest}-{re.sub(r'[^A-Za-z0-9._-]', '_', name)[-100:] or key}"
        if not target.is_file() or hashlib.sha256(target.read_bytes()).hexdigest()[:16] != digest:
            target.parent.mkdir(parents=True, exist_ok=True)
            with files.atomic_write(target) as out:
                out.write(raw)
        unpacked[key] = str(target)
    return unpacked


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
