"""Document question answering: the prompt frame, the session that reuses a document prefill, citations."""
