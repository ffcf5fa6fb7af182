"""Tools only developers run: the benchmark, stock nbgrader as a control, the README's screenshots."""
