"""Benchmarks: each prints ratios measured side by side in one run.

Run ``python -m bench`` for all of them, ``python -m bench list`` to see their names,
``python -m bench NAME --help`` for one's options.
"""
