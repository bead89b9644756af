"""Public data types: options, context, flag state, evaluation results, events."""
