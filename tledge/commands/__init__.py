"""One module per `tledge` subcommand; each is a thin click wrapper around a library call."""
