"""The LLM teacher: prompt templates, backends, a persistent score cache, and scoring."""
