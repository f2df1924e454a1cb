"""Inference for the user models (imported as ``comparemode.inference``): EM and filtering."""
