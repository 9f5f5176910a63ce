"""Runs every benchmark in turn."""

from bench import cold_import

if __name__ == "__main__":
    cold_import.main()
