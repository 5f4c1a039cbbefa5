"""Pair sampling, distillation losses and the student's training loop."""
