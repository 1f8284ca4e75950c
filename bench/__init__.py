"""The benchmark suite (``python -m bench``); see :mod:`bench.suite`."""
