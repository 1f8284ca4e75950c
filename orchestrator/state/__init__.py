"""What the daemon keeps on disk: the SQLite job store (:mod:`~orchestrator.state.store`), output
images (:mod:`~orchestrator.state.outputs`), the input folder (:mod:`~orchestrator.state.input_paths`)
and the retention policy that prunes them (:mod:`~orchestrator.state.retention`)."""
