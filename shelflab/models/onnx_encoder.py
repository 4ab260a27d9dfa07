"""Sentence-transformers encoders on ONNX Runtime, for CPU inference.

The model's transformer is exported once per weights (content fingerprint) to an ONNX file in
a machine-wide cache (`$SHELFLAB_CACHE/onnx`, default `~/.cache/shelflab/onnx`), like a hub
cache: the file is a pure function of the weights. Once exported, loading reads only that file
and the model's JSON files (no sentence-transformers or torch import: seconds per stage).
Tokenisation is the model's own fast tokenizer (`tokenizer.json`, the same token ids);
mean or CLS pooling and the L2 normalisation are done in numpy, so fp32 embeddings equal the
torch ones to float precision (cosine >= 0.9999998 on Home Depot titles).

Precision `int8`: ONNX Runtime's dynamic quantisation of the fp32 graph (int8 weights per
output channel, activations quantised per batch), cached next to it. On the full Home Depot
catalog (2 cores, `bench/bench_quantized_encoder.py`) it encodes 1.52x faster than fp32 ONNX
(~1.8x torch) and dense test ndcg@10 moves by -0.0014 (valid -0.0004); per-tensor weights
lost 0.014 and are not offered. `bench/bench_embed.py --backends torch onnx` compares runtimes.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shelflab.errors import ConfigError

OPSET = 17
PRECISIONS = ("fp32", "int8")
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def onnx_cache_dir() -> Path:
    base = os.environ.get("SHELFLAB_CACHE") or Path.home() / ".cache" / "shelflab"
    return Path(base) / "onnx"


@dataclass(frozen=True)
class EncoderSpec:
    """What inference needs besides the ONNX graph: the tokenizer and the modules after the
    transformer (pooling, normalisation), read from a sentence-transformers directory."""

    tokenizer: Any  # a `tokenizers.Tokenizer` or a transformers tokenizer
    max_seq_length: int
    pooling: str  # mean or cls
    dim: int
    normalize: bool  # a Normalize module: embeddings are always L2-normalised
    lower_case: bool = False


class OnnxEncoder:
    """The subset of SentenceTransformer that ShelfLab uses (`encode`, the dimension,
    `max_seq_length`), running the exported transformer on ONNX Runtime."""

    def __init__(self, spec: EncoderSpec, onnx_file: Path, threads: int) -> None:
        import onnxruntime as ort

        self.spec = spec
        self.max_seq_length = spec.max_seq_length
        self.dim = spec.dim
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
            enc = _tokenize(self.spec, batch)
            feed = {name: enc[name] for name in self.inputs}
            hidden = self.session.run(None, feed)[0]
            if self.spec.pooling == "cls":
                vectors = hidden[:, 0]
            else:
                mask = enc["attention_mask"][..., None].astype(np.float32)
                vectors = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            if normalize_embeddings or self.spec.normalize:
                norms = np.linalg.norm(vectors, axis=1, keepdims=True)
                vectors = vectors / np.maximum(norms, 1e-12)
            out[start : start + len(batch)] = vectors
        return out


def _tokenize(spec: EncoderSpec, texts: list[str]) -> dict[str, Any]:
    """int64 input_ids / attention_mask / token_type_ids, padded to the batch's longest text,
    as sentence-transformers' Transformer.tokenize makes them (texts stripped, truncated)."""
    import numpy as np

    texts = [t.strip() for t in texts]
    if spec.lower_case:
        texts = [t.lower() for t in texts]
    tok = spec.tokenizer
    if hasattr(tok, "encode_batch"):  # tokenizers.Tokenizer: padding, truncation set at load
        encs = tok.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in encs], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encs], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encs], dtype=np.int64),
        }
    enc = tok(texts, padding=True, truncation="longest_first", max_length=spec.max_seq_length,
              return_tensors="np")  # fmt: skip
    out = {name: enc[name].astype(np.int64) for name in INPUTS if name in enc}
    out.setdefault("token_type_ids", np.zeros_like(out["input_ids"]))
    return out


def _pooling_mode(config: dict[str, Any]) -> str:
    """'mean' or 'cls' from a Pooling module's config; anything else cannot run here."""
    modes = [k.removeprefix("pooling_mode_") for k, on in config.items()
             if k.startswith("pooling_mode") and on is True]  # fmt: skip
    if modes == ["mean_tokens"]:
        return "mean"
    if modes == ["cls_token"]:
        return "cls"
    raise ConfigError(f"backend onnx: pooling {modes} is not supported (mean or cls)")


def read_spec(path: Path, max_seq_length: int | None = None) -> EncoderSpec:
    """The EncoderSpec of a sentence-transformers directory from its JSON files alone, without
    importing sentence-transformers or torch (seconds per stage). Models with modules other
    than Transformer, Pooling and Normalize raise ConfigError (use backend torch)."""
    import tokenizers

    def load(name: str) -> Any:
        file = path / name
        try:
            return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"encoder {str(path)!r}: cannot read {name} ({exc})") from None

    modules = load("modules.json") or []
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if (
        not kinds
        or kinds[0] != "Transformer"
        or "Pooling" not in kinds[1:]
        or any(k not in ("Pooling", "Normalize") for k in kinds[1:])
    ):
        raise ConfigError(
            f"encoder {str(path)!r}: backend onnx runs Transformer + Pooling [+ Normalize] "
            f"models, this one has {kinds or 'no modules.json'} (use backend: torch)"
        )
    pooling = load(f"{modules[kinds.index('Pooling')]['path']}/config.json") or {}
    sbert = load("sentence_bert_config.json") or {}
    length = max_seq_length or sbert.get("max_seq_length")
    if not length or "word_embedding_dimension" not in pooling:
        raise ConfigError(f"encoder {str(path)!r}: no max_seq_length or embedding dimension")
    settings = load("tokenizer_config.json") or {}
    pad = settings.get("pad_token")
    pad = pad.get("content") if isinstance(pad, dict) else pad
    if (path / "tokenizer.json").is_file() and isinstance(pad, str):
        tokenizer = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
        pad_id = tokenizer.token_to_id(pad)
        if pad_id is None:
            raise ConfigError(f"encoder {str(path)!r}: pad token {pad!r} not in the vocabulary")
        tokenizer.enable_truncation(max_length=int(length))
        tokenizer.enable_padding(pad_id=pad_id, pad_token=pad)  # to the batch's longest
    else:  # no fast-tokenizer file: the transformers tokenizer (a slower import)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    return EncoderSpec(
        tokenizer=tokenizer,
        max_seq_length=int(length),
        pooling=_pooling_mode(pooling),
        dim=int(pooling["word_embedding_dimension"]),
        normalize="Normalize" in kinds,
        lower_case=bool(sbert.get("do_lower_case", False)),
    )


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
def load_onnx_encoder(
    path: str, max_seq_length: int | None = None, precision: str = "fp32"
) -> OnnxEncoder:
    """An OnnxEncoder of the model directory `path`, one session per (path, length, precision)
    in a process, as load_encoder keeps one torch model. The first use exports the graph (with
    torch) and, for int8, quantises it; later ones read only the ONNX file and the JSON files."""
    from shelflab.models.encoders import load_encoder, model_fingerprint

    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    spec = read_spec(Path(path), max_seq_length)
    file = onnx_cache_dir() / f"{model_fingerprint(Path(path), f'onnx-opset{OPSET}')}.onnx"
    if not file.is_file():
        export_onnx(load_encoder(path, "cpu", max_seq_length), file)
    if precision == "int8":
        file = quantize_int8(file)
    return OnnxEncoder(spec, file, threads=cpu_threads())


def quantize_int8(fp32_file: Path) -> Path:
    """The int8 graph of an fp32 ONNX file (dynamic quantisation, per-channel weights), made
    once next to it and reused."""
    from shelflab.atomic import atomic_path

    out = fp32_file.with_suffix(".int8.onnx")
    if out.is_file():
        return out
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its "consider pre-processing" advice, on the root logger
    try:
        with atomic_path(out, ".onnx") as tmp:
            quantize_dynamic(
                str(fp32_file), str(tmp), weight_type=QuantType.QInt8, per_channel=True
            )
    finally:
        root.setLevel(level)
    return out


@functools.lru_cache(maxsize=16)
def onnx_capable(path: Path) -> bool:
    """Whether ONNX Runtime can run this sentence-transformers directory here (once per path
    in a process: a dense model asks on every model_key, and the answer reads the tokenizer)."""
    try:
        read_spec(path)
    except ConfigError:
        return False
    return True


def cpu_threads() -> int:
    """OMP_NUM_THREADS when set, else the cores this process may use (its affinity)."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit() and int(os.environ["OMP_NUM_THREADS"]):
        return int(os.environ["OMP_NUM_THREADS"])
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)
