"""What the comparison scripts write into a results file about how they ran:
their options with paths made portable, so that a stored result says nothing
about the machine that produced it beyond what was measured."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def portable(value):
    """A path as a results file records it: relative to the checkout when it
    lies inside it, else its file name alone. Lists are mapped; other values
    are kept."""
    if isinstance(value, list):
        return [portable(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        rel = os.path.relpath(value, ROOT)
        return os.path.basename(value) if rel.startswith("..") else rel
    return value


def options(args):
    """An argparse namespace as a results file records it."""
    return {k: portable(v) for k, v in vars(args).items()}
