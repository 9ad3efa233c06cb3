"""asr: a small, hackable CTC speech recogniser (BiLSTM/BiGRU acoustic model, log-mel features)."""

from .audio import AudioError
from .recognizer import Recognizer, load_model
from .results import Segment, Transcription, Word
from .version import __version__

__all__ = ["AudioError", "Recognizer", "Segment", "Transcription", "Word", "load_model", "__version__"]
