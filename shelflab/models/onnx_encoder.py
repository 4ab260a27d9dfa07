"""Sentence-transformers encoders on ONNX Runtime, for CPU inference.

The model's transformer is exported once per weights (content fingerprint) to an ONNX file in
a machine-wide cache (`$SHELFLAB_CACHE/onnx`, default `~/.cache/shelflab/onnx`), like a hub
cache: the file is a pure function of the weights. Tokenisation stays the model's own
tokenizer; mean or CLS pooling and the L2 normalisation are done in numpy, so the embeddings
equal the torch ones to float precision (cosine >= 0.9999998 on Home Depot titles). On the
2-core machine fp32 ONNX Runtime encodes titles ~1.35x faster than torch; int8 dynamic
quantisation was faster still (~1.8x) but moved the embeddings (mean cosine 0.955 to fp32), so
it is not offered. `bench/bench_embed.py --backends torch onnx` measures both side by side.
"""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Any

from shelflab.errors import ConfigError

OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_cache_dir() -> Path:
    base = os.environ.get("SHELFLAB_CACHE") or Path.home() / ".cache" / "shelflab"
    return Path(base) / "onnx"


class OnnxEncoder:
    """The subset of SentenceTransformer that ShelfLab uses (`encode`, the dimension,
    `max_seq_length`), running the exported transformer on ONNX Runtime."""

    def __init__(self, st: Any, onnx_file: Path, threads: int) -> None:
        import onnxruntime as ort

        from shelflab.models.encoders import embedding_dim

        self.tokenizer = st.tokenizer
        self.max_seq_length = st.max_seq_length
        self.pooling = _pooling_mode(st)
        self.dim = embedding_dim(st)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # no busy-waiting between calls: the cores are shared with the rest of the stage
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [i.name for i in self.session.get_inputs()]

    def get_embedding_dimension(self) -> int:
        return self.dim

    def encode(
        self,
        texts: list[str],
        batch_size: int = 32,
        normalize_embeddings: bool = False,
        convert_to_numpy: bool = True,
        show_progress_bar: bool = False,
    ) -> Any:
        import numpy as np

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            enc = self.tokenizer(
                batch,
                padding=True,
                truncation="longest_first",
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            feed = {name: enc[name].astype(np.int64) for name in self.inputs}
            hidden = self.session.run(None, feed)[0]
            if self.pooling == "cls":
                vectors = hidden[:, 0]
            else:
                mask = enc["attention_mask"][..., None].astype(np.float32)
                vectors = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            if normalize_embeddings:
                norms = np.linalg.norm(vectors, axis=1, keepdims=True)
                vectors = vectors / np.maximum(norms, 1e-12)
            out[start : start + len(batch)] = vectors
        return out


def _pooling_mode(st: Any) -> str:
    """'mean' or 'cls' from the model's Pooling module; anything else cannot run here."""
    for module in st:
        mode = getattr(module, "pooling_mode", None)
        if mode is None and hasattr(module, "get_pooling_mode_str"):  # older releases
            mode = module.get_pooling_mode_str()
        if mode is not None:
            if mode in ("mean", "cls"):
                return mode
            raise ConfigError(f"backend onnx: pooling {mode!r} is not supported (mean or cls)")
    raise ConfigError("backend onnx: the model has no Pooling module")


def export_onnx(st: Any, out: Path) -> None:
    """The transformer of SentenceTransformer `st` as an ONNX graph (dynamic batch and length),
    written atomically to `out`."""
    import torch

    from shelflab.atomic import atomic_path

    model = st[0].auto_model.eval()
    sample = st.tokenizer(["a product title", "a longer product title, 2 pack"], padding=True,
                          return_tensors="pt")  # fmt: skip
    names = [n for n in INPUTS if n in sample]

    class Hidden(torch.nn.Module):  # keyword inputs: positional order differs across versions
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: Any) -> Any:
            return self.model(**dict(zip(names, args, strict=True))).last_hidden_state

    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, ".onnx") as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on Python control flow
        torch.onnx.export(
            Hidden(),
            tuple(sample[n] for n in names),
            str(tmp),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


@functools.lru_cache(maxsize=4)
def load_onnx_encoder(path: str, max_seq_length: int | None = None) -> OnnxEncoder:
    """An OnnxEncoder of the model directory `path` (exported on first use), one session per
    (path, length) in a process, as load_encoder keeps one torch model."""
    import torch

    from shelflab.models.encoders import load_encoder, model_fingerprint

    st = load_encoder(path, "cpu", max_seq_length)
    file = onnx_cache_dir() / f"{model_fingerprint(Path(path), f'onnx-opset{OPSET}')}.onnx"
    if not file.is_file():
        export_onnx(st, file)
    return OnnxEncoder(st, file, threads=torch.get_num_threads())
