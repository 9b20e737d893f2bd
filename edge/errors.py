"""The one exception type tledge raises for bad input or a failed check."""


class TledgeError(Exception):
    """A user-facing error: its message names the file or option and what to do.

    The CLI prints it as one line on stderr and exits non-zero; library code raises it
    instead of printing or calling `sys.exit`.
    """
