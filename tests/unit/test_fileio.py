"""check_output: what a command may write over."""

from __future__ import annotations

import pytest

from alexnet_lab.core.errors import UserInputError
from alexnet_lab.core.fileio import check_output


def test_existing_outputs_need_force_but_an_empty_file_holds_nothing_to_lose(tmp_path):
    full, empty, source = tmp_path / "full.safetensors", tmp_path / "empty.safetensors", tmp_path / "in.pth"
    full.write_bytes(b"weights")
    empty.touch()
    source.write_bytes(b"input")
    with pytest.raises(UserInputError, match="already exists; pass --force"):
        check_output(full, [source])
    check_output(full, [source], force=True)
    check_output(empty, [source])  # mkstemp / NamedTemporaryFile made it to receive the output
    check_output(tmp_path / "new.safetensors", [source])
    with pytest.raises(UserInputError, match="is the input"):
        check_output(source, [source], force=True)
    (tmp_path / "folder").mkdir()  # never replaced by a file, even with force
    with pytest.raises(UserInputError, match="is a folder where a file is expected"):
        check_output(tmp_path / "folder", [source], force=True)
