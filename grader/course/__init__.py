"""The course: its notebooks and where they live, nbgrader's cell facts, release, validate, the student's lab."""
