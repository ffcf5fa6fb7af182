"""The course's grader: release notebooks and autograde submissions with nbgrader."""
