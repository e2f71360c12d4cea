"""What ranks documents for a query: BM25, dense embedders, and pooling candidates from both."""
