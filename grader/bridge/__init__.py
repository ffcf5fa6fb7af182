"""Two kernels, one notebook: the test cells in a trusted kernel, the student's code served across a relay."""
