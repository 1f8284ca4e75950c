"""``python -m bench``: the benchmark suite (and ``python -m bench soak``)."""

from __future__ import annotations

import sys

from bench.suite import main

if __name__ == "__main__":
    sys.exit(main())
