"""Written answers graded by people, in nbgrader's formgrader over OUT/course."""
