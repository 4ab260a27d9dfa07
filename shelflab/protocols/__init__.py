"""Evaluation protocols as contract tables: random (query) split, global time split, next-item
leave-one-out."""
