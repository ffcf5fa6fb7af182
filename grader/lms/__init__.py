"""The LMS round trip: collect what an LMS exported, export grades in its own format, rosters, late work."""
