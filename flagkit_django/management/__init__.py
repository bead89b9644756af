"""Management commands of flagkit_django."""
