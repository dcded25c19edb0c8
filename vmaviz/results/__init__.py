"""The results behind the app's Results page: simulated runs beside published numbers.

``python -m vmaviz.results.build`` regenerates ``data/results/*.csv`` (the pft sweeps,
the Android launch and TCP zerocopy runs, and the calibration target table); the
page (:mod:`vmaviz.ui.results`) reads those files and can recompute the pft sweeps.
"""
