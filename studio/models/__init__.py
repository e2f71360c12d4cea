"""Fine-tuned model folders: :func:`studio.training.model_export.export_model` writes them; :mod:`studio.models.registry` finds and inspects them (merged, loadable as is)."""
