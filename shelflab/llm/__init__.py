"""Optional OpenAI-compatible LLM backend, shared by the review enrichment and the `llm_rerank`
model: the HTTP client and its config (`client`), and cached, resumable, concurrency-limited
batches of requests (`batch`). It sits below `models` and `reviews`, so both can use it.
"""
