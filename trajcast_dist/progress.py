"""Progress bars: tqdm on a terminal; elsewhere (a log file, CI) a plain line every half minute, as tqdm's
carriage-return refreshes would fill the file with thousands of updates."""

import sys

from tqdm import tqdm

__all__ = ["progress_bar"]

PLAIN_INTERVAL_S = 30.0


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs) -> tqdm:
    """`tqdm(iterable, **kwargs)`, shown only when `enabled`; as plain lines when stderr is not a terminal."""
    if not enabled:
        return tqdm(iterable, disable=True, **kwargs)
    if sys.stderr.isatty():
        return tqdm(iterable, dynamic_ncols=True, **kwargs)
    return tqdm(iterable, file=_Lines(sys.stderr), ascii=True, ncols=100, mininterval=PLAIN_INTERVAL_S,
                maxinterval=PLAIN_INTERVAL_S, delay=PLAIN_INTERVAL_S, **kwargs)


class _Lines:
    """A stream for tqdm that turns each refresh into one whole line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()
