"""The student's kernel: a bubblewrap sandbox, its control group and run folder, a uid of its own."""
