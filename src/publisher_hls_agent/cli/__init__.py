"""Command line: run, demo and the tools."""
