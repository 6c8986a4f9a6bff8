"""Prove that weights are what they claim to be: structure, integrity, provenance, parity.

``run_verify(weights, VerifyOptions(...))`` returns a :class:`VerifyReport` of
:class:`Check` results (PASS / WARN / FAIL / SKIP); ``render_table`` and ``render_json`` print it.
Only the parity check imports a framework, and only when it runs.
"""

from alexnet_lab.verify.checks import FAIL, PASS, SKIP, WARN, Check, VerifyReport
from alexnet_lab.verify.report import render_json, render_table
from alexnet_lab.verify.runner import VerifyOptions, run_verify

__all__ = [
    "Check", "FAIL", "PASS", "SKIP", "VerifyOptions", "VerifyReport", "WARN", "render_json", "render_table", "run_verify",
]
