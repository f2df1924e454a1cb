"""Generative models of comparison-mode votes (imported as ``comparemode.models``).

- :mod:`comparemode.models.likelihood`: log-likelihood pieces shared by EM and PyMC;
- :mod:`comparemode.models.stats`: the aggregation of votes into sufficient statistics;
- :mod:`comparemode.models.simulate`: the simulator (prior predictive of the model).
"""
