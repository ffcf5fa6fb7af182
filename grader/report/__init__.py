"""What the instructor reads about a class: the report, item analysis and similar submissions."""
