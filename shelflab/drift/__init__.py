"""Drift of a new review batch against the training period: Evidently data, text-descriptor and
embedding drift, and the champion model on the batch."""
