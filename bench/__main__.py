"""Runs every benchmark in turn."""

from bench import authorizer, cold_import, cold_instructions, load, metering, repository, round_trips, sizes

if __name__ == "__main__":
    cold_instructions.main()
    print()
    cold_import.main()
    print()
    authorizer.main()
    print()
    repository.main()
    print()
    round_trips.main()
    print()
    metering.main()
    print()
    if sizes.BUILD.is_dir():
        sizes.main([])
    else:
        print("artifact sizes: run `make build` first (sam build), then `python -m bench.sizes`")
    print()
    load.main()  # last: it exits non-zero when a request of the run failed
