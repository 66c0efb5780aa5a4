"""Analyses of attention heads, one module per analysis, each with one public entry point."""
