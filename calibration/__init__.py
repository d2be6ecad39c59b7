"""Calibration models, calibration files and fitting from co-location data (see docs/calibration.md)."""
