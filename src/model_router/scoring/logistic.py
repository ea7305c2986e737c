"""The logistic function, shared by the scorer's calibrated model and the learned router's calibration.

Standard library only: the Lambdas compute it without numpy.
"""

from __future__ import annotations

import math


def sigmoid(z: float) -> float:
    """``1 / (1 + exp(-z))``, computed without overflow for any finite ``z``."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
