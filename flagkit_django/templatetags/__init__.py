"""Template tag libraries of flagkit_django (``{% load flagkit %}``)."""
