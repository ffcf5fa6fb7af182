"""Grading a class: the driver, the local process pool or a Dask cluster, progress."""
