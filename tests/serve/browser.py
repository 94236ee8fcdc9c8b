"""Headless Chromium for the web page tests: Debian's /usr/bin/chromium driven by Playwright (Playwright's own
browser download needs the internet; `executable_path` points it at the system binary)."""

from __future__ import annotations

import os
import shutil

CANDIDATES = ("LONGDOC_CHROMIUM", "chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    env = os.environ.get("LONGDOC_CHROMIUM")
    if env and os.path.exists(env):
        return env
    for name in CANDIDATES[1:]:
        found = shutil.which(name)
        if found:
            return found
    return None
