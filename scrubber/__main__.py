from scrubber.cli import main

if __name__ == "__main__":  # not in a worker process that --jobs spawns
    main()
