"""Generic helpers with no project dependencies: atomic writes, restricted unpickling, torch-file reading.

The lowest layer: nothing here imports another ``neuralannot`` package (see ``docs/architecture.md``).
"""
