"""No progress bars from transformers and diffusers while we load, save or convert models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_progress() -> Iterator[None]:
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    t_was, d_was = tlog.is_progress_bar_enabled(), dlog.is_progress_bar_enabled()
    tlog.disable_progress_bar()
    dlog.disable_progress_bar()
    try:
        yield
    finally:
        if t_was:
            tlog.enable_progress_bar()
        if d_was:
            dlog.enable_progress_bar()
