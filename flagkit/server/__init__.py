"""The local FlagKit-compatible server (``flagkit serve``), standard library only."""
