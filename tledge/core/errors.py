"""The one exception type tledge raises for bad input or a failed check."""


class TledgeError(Exception):
    """A user-facing error: its message names the file or option and what to do.

    The CLI prints it as one line on stderr and exits non-zero; library code raises it
    instead of printing or calling `sys.exit`.
    """


def first_line(error: BaseException) -> str:
    """The first line of `error`'s message, or its type name when the message is empty.

    For one-line messages that quote what a library said.
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
