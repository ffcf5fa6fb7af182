"""What a student reads: the feedback page, its summary, and the sanitising that makes it safe to open."""
