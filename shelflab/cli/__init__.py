"""`shelflab` command line: one module per command group (main holds the parser, retrieve and
evaluate)."""
