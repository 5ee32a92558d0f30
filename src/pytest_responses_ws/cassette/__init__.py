"""Cassettes: the model, its JSON codec, redaction and the on-disk store."""
