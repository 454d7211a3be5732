"""Streaming detectors, one per module; ``DETECTORS`` maps a rule's ``detector.type`` to its class.

The contract is in ``base``; every registered detector passes the conformance suite
(``tests/unit/test_detector_conformance.py``) for free.
"""

from lifeline.detectors.base import Detector, ParamError, Params, Verdict
from lifeline.plugins import PluginRegistry

DETECTORS: PluginRegistry[Detector] = PluginRegistry("detector", Detector, {
    "robust_zscore": "lifeline.detectors.robust_zscore:RobustZScoreDetector",
    "spectral_peak": "lifeline.detectors.spectral:SpectralPeakDetector",
    "flatline": "lifeline.detectors.flatline:FlatlineDetector",
    "spike": "lifeline.detectors.spike:SpikeDetector",
    "rate_of_change": "lifeline.detectors.rate_of_change:RateOfChangeDetector",
    "ewma": "lifeline.detectors.ewma:EWMADetector",
    "cusum": "lifeline.detectors.cusum:CUSUMDetector",
    "seasonal": "lifeline.detectors.seasonal:SeasonalDetector",
    "forecast": "lifeline.detectors.forecast:ForecastDetector",
    "ensemble": "lifeline.detectors.ensemble:EnsembleDetector",
})

__all__ = ["DETECTORS", "Detector", "ParamError", "Params", "Verdict"]
