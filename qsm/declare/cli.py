"""What every command line of the suite shares: help that states each option's default, and
options that print something and exit (such as `--list-agents`) without the required arguments.

    ap = argparse.ArgumentParser(prog="python -m analysis.x", description=__doc__,
                                 formatter_class=HelpFormatter)

Imports nothing of the suite: analysis modules use it without pulling in agents or environments.
"""
from __future__ import annotations

import argparse


def states_default(action: argparse.Action) -> bool:
    """Whether an option's help should name its default: not for flags that are off, options
    that are unset (None) or empty, nor for required positionals."""
    default = action.default
    if default is None or default is False or default is argparse.SUPPRESS:
        return False
    if isinstance(default, (list, tuple)) and not default:
        return False
    return bool(action.option_strings) or action.nargs in (argparse.OPTIONAL,
                                                           argparse.ZERO_OR_MORE)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (docstrings keep their layout), and "(default: X)" after
    every option's help unless the help already names its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if text == argparse.SUPPRESS or "default" in text or not states_default(action):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


class PrintAndExit(argparse.Action):
    """An option that prints `text()` and exits 0 as soon as it is parsed, like --version, so
    that it works without the otherwise required arguments."""

    def __init__(self, option_strings, dest, text, help=None):
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                         nargs=0, help=help)
        self.text = text

    def __call__(self, parser, namespace, values, option_string=None):
        print(self.text().rstrip("\n"))
        parser.exit(0)

