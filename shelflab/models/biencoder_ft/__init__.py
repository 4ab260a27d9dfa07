"""`biencoder_ft`: the packaged MiniLM fine-tuned on the task (`model`), its training loop
(`fit`)."""

from shelflab.models.biencoder_ft.fit import duplicate_free_batches
from shelflab.models.biencoder_ft.model import ENCODER_DIR, HISTORY_FILE, BiEncoderFT

__all__ = ["ENCODER_DIR", "HISTORY_FILE", "BiEncoderFT", "duplicate_free_batches"]
