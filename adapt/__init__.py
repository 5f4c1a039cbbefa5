"""adapt: label-free domain adaptation of ColBERT retrievers by pairwise relevance distillation."""

__version__ = "0.1.0"
