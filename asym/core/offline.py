"""Working without network: one quick look for the Hugging Face Hub per process, then huggingface_hub's offline mode.

Without network and without ``HF_HUB_OFFLINE=1``, huggingface_hub retries every Hub download five times (about 23 s
per file) before giving up: creating pyiqa's MANIQA, whose timm backbone asks for two files, took 46 s only to fail.
asym asks ``hub_reachable()`` before its downloads (pretrained backbones, pyiqa metrics, VLM scorers, Hub model
ids): one HEAD request with a short timeout, its answer kept for the process. Where the Hub cannot be reached, it
says so in one line and turns on huggingface_hub's offline mode, as ``HF_HUB_OFFLINE=1`` would: cached files are
used, anything else fails at once, and asym's usual fallbacks follow (random weights with their warning, a metric
reported unavailable). Offline, ``no_download_notices()`` drops the ``Downloading: "<url>"`` line torch.hub and
pyiqa print just before such a download fails (asym's own line says what failed).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import urllib.error
import urllib.request

logger = logging.getLogger("asym")
TIMEOUT = 5.0  # seconds; the Hub answers a HEAD in well under one where it can be reached


@functools.cache
def hub_reachable() -> bool:
    """Whether the Hub (``HF_ENDPOINT``, through the usual proxy variables) answers; False under ``HF_HUB_OFFLINE``.

    Checked once per process. When it does not answer: one warning, and huggingface_hub is offline from then on.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        urllib.request.urlopen(urllib.request.Request(constants.ENDPOINT, method="HEAD"), timeout=TIMEOUT).close()
    except urllib.error.HTTPError:  # it answered, with an error status: reachable
        return True
    except (OSError, ValueError) as err:  # no route, no name resolution, refused, timed out, a malformed endpoint
        reason = getattr(err, "reason", err)
        logger.warning("the Hugging Face Hub (%s) cannot be reached (%s): using cached Hub files only "
                       "(HF_HUB_OFFLINE=1 skips this check)", constants.ENDPOINT, reason)  # fmt: skip
        constants.HF_HUB_OFFLINE = True  # read by huggingface_hub at every request (transformers, timm, pyiqa)
        os.environ["HF_HUB_OFFLINE"] = "1"  # and by libraries imported later and child processes
        return False
    return True


class _WithoutDownloadNotices:
    """A text stream that passes everything on but torch.hub's and pyiqa's ``Downloading: "<url>" to <file>`` lines
    (and the empty line pyiqa's print adds after its own)."""

    def __init__(self, stream):
        self._stream, self._dropped = stream, False

    def write(self, text: str) -> int:
        dropped, self._dropped = self._dropped, text.startswith('Downloading: "')
        if self._dropped or (dropped and text == "\n"):
            return len(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextlib.contextmanager
def no_download_notices():
    """Around a loader that may download weights (torchvision, pyiqa): where the Hub cannot be reached, their
    ``Downloading: ...`` notice, printed just before the download fails, is dropped; with network nothing changes
    (a real download shows its notice and progress)."""
    if hub_reachable():
        yield
        return
    with contextlib.redirect_stdout(_WithoutDownloadNotices(sys.stdout)):
        with contextlib.redirect_stderr(_WithoutDownloadNotices(sys.stderr)):
            yield


__all__ = ["hub_reachable", "no_download_notices"]
