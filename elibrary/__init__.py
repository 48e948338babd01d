"""elibrary."""
