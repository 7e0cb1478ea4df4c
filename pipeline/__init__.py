"""newswash pipeline: options, I/O, wiring and the command line."""
