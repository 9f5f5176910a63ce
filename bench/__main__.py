"""Runs every benchmark in turn."""

from bench import authorizer, cold_import, cold_instructions, repository

if __name__ == "__main__":
    cold_instructions.main()
    print()
    cold_import.main()
    print()
    authorizer.main()
    print()
    repository.main()
