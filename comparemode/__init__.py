"""comparemode: quality control for comparison-mode preference votes.

A chat product shows a user two answers from two different models and the user picks the
better one (or a tie). comparemode infers, per user, how likely the user is to be voting
attentively, and filters or weights the votes before they train a preference model.

Main entry points:

- :func:`load_votes`: read and validate a votes table (CSV, Parquet, JSON, arena, LLMFAO);
- :func:`simulate_votes`: draw votes and the truth from the generative model;
- :class:`TwoTypeEM`: the two-type (attentive / careless) user model fitted by EM;
- :func:`filter_votes`: keep or drop each user's votes, with per-vote weights.
"""

from comparemode import errors
from comparemode.constants import DEFAULT_THRESHOLD, INTERVAL_PROB
from comparemode.data import load_votes, read_arena, read_llmfao, validate_votes
from comparemode.inference.em import TwoTypeEM
from comparemode.inference.filter import FilterResult, filter_votes
from comparemode.models.simulate import Simulation, simulate_votes
from comparemode.reference import read_strengths

__version__ = "0.1.0"

__all__ = [
    "errors",
    "load_votes",
    "read_arena",
    "read_llmfao",
    "validate_votes",
    "read_strengths",
    "simulate_votes",
    "Simulation",
    "TwoTypeEM",
    "filter_votes",
    "FilterResult",
    "DEFAULT_THRESHOLD",
    "INTERVAL_PROB",
    "__version__",
]
