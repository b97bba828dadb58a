"""The command line: one module per command group; parses flags and calls the library."""
