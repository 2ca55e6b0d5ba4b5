"""boxlib: query-box embeddings on any manifold."""

__version__ = "0.1.0"
