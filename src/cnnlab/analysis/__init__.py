"""Result tables (and, later, statistics and findings) computed from the store."""
