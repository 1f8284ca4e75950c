"""Importing litellm offline (its price map from the installed package, no telemetry).

litellm must be imported only after ``LITELLM_LOCAL_MODEL_COST_MAP`` is set, or it fetches
its price map from the internet: every module that needs litellm gets it from here.
"""

from __future__ import annotations

import os
from typing import Any


def prepare_litellm() -> Any:
    """The litellm module, imported offline: local price map, no telemetry, no banners."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banners on stdout
    return litellm
