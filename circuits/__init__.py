"""Circuit discovery and evaluation: patching, attribution, pruning, SVD tracing, faithfulness."""
