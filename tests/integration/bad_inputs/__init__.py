"""A corpus of hostile and damaged inputs, each run through the real `alexnet` CLI in a subprocess.

Used by tests/integration/test_bad_inputs.py and benchmarks/bad_inputs.py. Importing the package
registers every case (weight_files.py, lying_and_other.py, surfaces.py) in BUILDERS.
"""

from tests.integration.bad_inputs import lying_and_other, surfaces, weight_files  # noqa: F401 - registers the cases
from tests.integration.bad_inputs.corpus import (
    BUILDERS,
    Case,
    build_corpus,
    judge,
    run_case,
    run_cli_measured,
    write_good_files,
)

__all__ = ["BUILDERS", "Case", "build_corpus", "judge", "run_case", "run_cli_measured", "write_good_files"]
