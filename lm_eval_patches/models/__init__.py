"""Model backends, one module per backend family."""
