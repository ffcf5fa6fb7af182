"""Grading one notebook: the one pure task, nbgrader's pipeline with our execution, repairs and audits."""
