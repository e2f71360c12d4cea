"""Relevance Studio: label query/document relevance and turn the labels into better retrieval models."""

__version__ = "0.1.0"
