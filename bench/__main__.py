"""Runs every benchmark in turn."""

from bench import authorizer, cold_import, repository

if __name__ == "__main__":
    cold_import.main()
    print()
    authorizer.main()
    print()
    repository.main()
