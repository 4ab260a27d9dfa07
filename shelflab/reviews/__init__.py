"""The review-to-item track: queries from reviews, train-period keywords and LLM enrichment of
the item text."""
