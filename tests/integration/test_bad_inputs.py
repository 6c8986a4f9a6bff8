"""Hostile and damaged inputs through the real CLI: every one is refused or reported cleanly.

Each case of tests/integration/bad_inputs/ (truncated and empty files, wrong magic,
huge or overflowing safetensors headers, overlapping offsets, pickles with code, zip and
HDF5 bombs, symlinks to /dev/zero, FIFOs, folders, a decompression-bomb PNG, a truncated JPEG,
files that load but lie, conversions that would destroy or lose something) runs `python -m
alexnet_lab` in a fresh process and must give: a non-zero exit, ONE line on stderr and no
traceback (or, for files that load but lie, verify's FAIL on the named check), and every file a
case protects is byte-for-byte as it was. Since the guards were shared, the corpus covers every
command that writes, lying metadata, odd image geometry, looping folders, shards and the server's
start-up (surfaces.py). The CLI
process's own peak memory must stay under twice the size of a legitimate full-size (owt)
weight file: hostile files are refused from their declarations, before anything big is read.

`PYTHONPATH=src python benchmarks/bad_inputs.py` runs the same corpus and prints the figures.
"""

from __future__ import annotations

import pytest

from tests.integration.bad_inputs import BUILDERS, FRAMEWORK_CASES, run_case, run_cli_measured, write_good_files

# these import torch (~10 s each on a shared CPU): its unpickler refuses the pickle, and it reads the
# .pth; every other case is refused before any framework is imported
SLOW = {"pickle-with-code.pth", "bit-flip.pth"}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return write_good_files(tmp_path_factory.mktemp("good"))


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in BUILDERS])
def test_hostile_input_is_refused_cleanly(name, good, tmp_path):
    case = BUILDERS[name](tmp_path, good)
    result, problems = run_case(case)
    assert problems == [], f"{case.args}: rc {result['returncode']}\n{result['stderr']}\n{result['stdout'][-500:]}"
    assert not list(tmp_path.rglob("*-ran")), "a pickle's payload ran"
    legit_mb = good["owt"].stat().st_size / 2**20
    if case.expect in ("partial", "ok") or name in FRAMEWORK_CASES:
        return  # not a refusal (it predicts), or a framework was imported, whose import alone peaks at ~700 MB
    assert result["peak_rss_mb"] < 2 * legit_mb, f"peak {result['peak_rss_mb']:.0f} MB vs a {legit_mb:.0f} MB weight file"


def test_force_replaces_an_existing_output_atomically(good, tmp_path):
    target = tmp_path / "out.safetensors"
    target.write_bytes(b"old")
    refused = run_cli_measured(("convert", str(good["cifar"]), str(target)))
    assert refused["returncode"] == 2 and target.read_bytes() == b"old"
    forced = run_cli_measured(("convert", str(good["cifar"]), str(target), "--force"))
    assert forced["returncode"] == 0, forced["stderr"]
    assert target.read_bytes()[:8] != b"old" and not list(tmp_path.glob(".*.tmp"))
