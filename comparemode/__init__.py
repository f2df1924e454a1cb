"""comparemode: quality control for comparison-mode preference votes."""
