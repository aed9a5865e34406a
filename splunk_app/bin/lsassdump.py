#!/usr/bin/env python
"""Entry point that splunkd starts for ``| lsassdump`` (commands.conf: chunked = true).

The command itself lives in ../lib/lsassdump_splunk. lib/ also contains the lsassdump core,
splunklib and the rules compiled to JSON. Nothing may be printed here: stdout carries the protocol.
"""

import os
import sys


def main() -> None:
    """Put the app's lib/ first on sys.path and run the command over standard input and output."""
    app_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    lib = os.path.join(app_root, "lib")
    if lib not in sys.path:
        sys.path.insert(0, lib)

    from splunklib.searchcommands import dispatch

    from lsassdump_splunk.command import LsassdumpCommand

    dispatch(LsassdumpCommand, sys.argv, sys.stdin, sys.stdout, __name__)


if __name__ == "__main__":
    main()
