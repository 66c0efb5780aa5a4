"""Attention with per-query statistics, without materialising the n x n pattern.

Knows nothing about models: imports torch (and triton, lazily) only.
"""
