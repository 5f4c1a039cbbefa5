"""adapt: label-free domain adaptation of ColBERT retrievers by pairwise relevance distillation.

The Python API (adapt/api.py): `run` an adaptation from a recipe or a Config, `open_run` a
finished one, `Run.search` its index, score a ranking with `metrics`.
"""

from adapt.api import Run, metrics, open_run, run
from adapt.config import Config, load_config
from adapt.data import read_queries

__version__ = "0.1.0"
__all__ = ["Config", "Run", "load_config", "metrics", "open_run", "read_queries", "run"]
