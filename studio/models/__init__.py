"""Fine-tuned model folders: :func:`studio.models.export.export_model` writes them (merged, loadable as is)."""
