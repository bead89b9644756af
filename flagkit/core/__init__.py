"""Core machinery: flag store, evaluator, context, updates, events."""
