"""`cross_encoder`: a sentence-transformers CrossEncoder reranking the top-N of a first stage.

params.yaml: `components` are whole model specs (YAML anchors, as for `hybrid` / `xgb_ltr`),
built inside this model's own directories (`<model_dir>/components/<name>`,
`<index_dir>/components/<name>`); `first_stage` names the component whose top `candidates`
items are rescored by the cross-encoder, reading (query text, item text) jointly (these three
params are shared with xgb_ltr: `shelflab.models.reranker`).

retrieve(queries, k): the first stage's top max(`candidates`, k) items per query; the top
`candidates` are rescored and sorted by the cross-encoder's raw logit (score = logit, no
sigmoid) or, with a fusion weight w < 1, by w * minmax(logit) + (1 - w) * minmax(first-stage
score) per query (w = `fusion_weight`, or chosen on the valid split after training from 0.0,
0.1, ..., 1.0: a reranker that is not yet better than its first stage then leans on it); when
k > `candidates`, first-stage ranks `candidates`+1..k follow in first-stage order with
synthetic scores below every reranked one (lowest reranked score of the query minus the
distance in ranks), so scores stay strictly descending down the run and reranking
costs at most `candidates` pairs per query. `score_pairs(queries, pairs)` gives the logit of
arbitrary (query_id, item_id) pairs (xgb_ltr uses it as an exact feature); equal to the
retrieve scores up to float noise (batches are formed by length).

train@ (`train: true`): `fit` builds private copies of the components in a temporary
directory, mines the first stage's top `candidates` for the judged train queries (at most
`max_train_queries`, a seeded sample) and makes pairs: every relevant judgment (grade > 0) of
a catalog item (found by the first stage or not) + a seeded sample of up to `negatives`
grade-0 candidates per query (judged non-relevant or unjudged). Labels = grade / max train
grade in [0, 1] (graded BCE-with-logits targets). Initialised from `model` (by default the
packaged all-MiniLM-L6-v2: a BERT encoder whose 1-logit head is freshly initialised after
seeding torch), trained with a plain torch loop: AdamW, linear warmup/decay, gradient
clipping at 1.0, seeded shuffling; deterministic on CPU. After each epoch the valid queries'
candidates are reranked, ndcg@10 on the valid qrels is reported to the progress hook
(`training.report_valid`, which may raise to stop a trial) and the best epoch's weights are
kept; `patience` epochs without gain end the training (0: all `epochs` run; the shared rule
of `shelflab.models.early_stopping`; this param was called `early_stopping` before). The
first stage's own valid ndcg@10 is recorded as epoch 0. Without a valid split, the last epoch
is kept. `train: false`: `model` must already be a trained cross-encoder (a sequence-
classification checkpoint, e.g. a `<model_dir>/cross_encoder/` of this family); fit trains
nothing and the model is copied into the model directory when saved.

Refused with InputError: a train split with no positive pair (none in the qrels, or none of
a judged train query on a catalog item), a valid split given with no judged relevant query.
ConfigError: `first_stage` not a component, a component that is itself a cross_encoder,
`train: false` with a checkpoint that has no classification head, a model that cannot be
loaded (weights are never downloaded).

model_dir: `shelflab-model.json`, `cross_encoder/` (CrossEncoder.save_pretrained: config,
tokenizer, `model.safetensors`; no pickle), `cross_encoder.json` (train info: epochs run,
best epoch, per-epoch valid ndcg@10 and mean loss, pair counts, seconds),
`components/<name>/`.
index_dir: `shelflab-index.json`, `items.parquet` (item_id, text: the reranker reads item
text), `components/<name>/`.

Modules: `model` (the Retriever), `encoder` (loading, logits), `fusion` (head rescoring,
fusion weight), `pairs` (training pairs), `fit` (the training loop).
"""

from shelflab.models.cross_encoder.model import CE_DIR, CE_FILE, CrossEncoderRetriever

__all__ = ["CE_DIR", "CE_FILE", "CrossEncoderRetriever"]
