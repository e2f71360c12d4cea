"""Evaluation: ranking metrics, base-vs-fine-tuned comparison with significance, error analysis."""
