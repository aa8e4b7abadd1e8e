"""Side-by-side benchmarks of bocws against raw ASGI and its peers (see README.md)."""
