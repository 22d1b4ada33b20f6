"""The `simcse-lab` command line (`cli`) and the commands built on the library: diagnose, tour, course."""
