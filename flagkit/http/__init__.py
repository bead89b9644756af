"""HTTP transport: the only place that talks to httpx."""
