"""The ``orchestrator`` command line: :mod:`~orchestrator.cli.main` (the parser and ``run``),
and one module per command group (``agent``, ``bench``, ``comfy``, ``daemon``, ``inputs``,
``models``), with :mod:`~orchestrator.cli.progress` for the one-line progress display."""
