"""The ColBERT student and its index backends."""
