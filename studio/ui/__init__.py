"""The Gradio app: thin tabs over the library (no SQL, no training, no metric maths here)."""
