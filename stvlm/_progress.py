"""Progress bars that cost nothing when silenced (``verbose=0``)."""

from __future__ import annotations


class _NoProgress:
    def update(self, n=1):
        pass

    def set_postfix(self, **kwargs):
        pass

    def close(self):
        pass


def progress(total, verbose, desc):
    """A tqdm bar over ``total`` steps, or a silent stand-in when ``verbose`` is falsy."""
    if not verbose:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc)
