"""The pipeline's library side: built models opened from a track's layout, evaluation of a built
model, ingest logging, and the code manifests that make stage dependencies exact."""
