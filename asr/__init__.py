"""asr: a small, hackable CTC speech recogniser (BiLSTM/BiGRU acoustic model, log-mel features)."""

__version__ = "0.1.0"

from .audio import AudioError  # noqa: E402
from .recognizer import Recognizer, load_model  # noqa: E402
from .transcribe import Segment, Transcription  # noqa: E402
from .decoding import Word  # noqa: E402

__all__ = ["AudioError", "Recognizer", "Segment", "Transcription", "Word", "load_model", "__version__"]
