"""Turn gold labels into training data: a quality report and FlagEmbedding triplets."""
