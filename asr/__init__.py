"""asr: a small, hackable CTC speech recogniser (BiLSTM/BiGRU acoustic model, log-mel features)."""

__version__ = "0.1.0"

from .recognizer import Recognizer, load_model  # noqa: E402

__all__ = ["Recognizer", "load_model", "__version__"]
