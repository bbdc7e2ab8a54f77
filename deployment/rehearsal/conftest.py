"""The rehearsal's modules and the chart checks' renderer (deployment/helm/tests) on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[0] / "helm" / "tests"))
