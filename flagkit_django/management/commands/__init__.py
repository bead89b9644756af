"""``flagkit_flags``, ``flagkit_explain`` and ``flagkit_serve``."""
