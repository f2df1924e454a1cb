"""Named constants shared across the package (one place, passed explicitly).

Nothing in comparemode reads global ArviZ or matplotlib settings; functions that need one of
these numbers take it as an argument whose default is the constant here.
"""

from __future__ import annotations

#: Canonical column names of the votes table (Chatbot Arena convention).
USER = "user"
MODEL_A = "model_a"
MODEL_B = "model_b"
WINNER = "winner"
PROMPT_ID = "prompt_id"
MU = "mu"
REQUIRED_COLUMNS = (USER, MODEL_A, MODEL_B, WINNER)
OPTIONAL_COLUMNS = (PROMPT_ID, MU)

#: Allowed values of the ``winner`` column.
WIN_A = "model_a"
WIN_B = "model_b"
TIE = "tie"
TIE_BOTHBAD = "tie (bothbad)"
WINNER_VALUES = (WIN_A, WIN_B, TIE, TIE_BOTHBAD)
TIE_VALUES = (TIE, TIE_BOTHBAD)

#: Integer codes of a vote's outcome used by the encoded arrays.
CODE_A = 0
CODE_B = 1
CODE_TIE = 2

#: Default keep rule of the EM filter: keep users whose P(attentive) is at least this.
DEFAULT_THRESHOLD = 0.5
#: The default decision rule of ``comparemode run`` and ``comparemode report`` (one rule for both): the
#: Bayesian false-discovery rule, keeping users while their expected careless share is at most this.
DEFAULT_FDR_ALPHA = 0.1
#: A user whose decisive picks change the odds of attentive against careless by less than this
#: factor either way has "no evidence" (Jeffreys: a Bayes factor under 3 is barely worth mentioning).
NO_EVIDENCE_BAYES_FACTOR = 3.0

#: Elo ratings: a difference of ELO_SCALE points means odds of 10 to 1.
ELO_SCALE = 400.0

#: EM defaults.
DEFAULT_TOL = 1e-10  # stop when the log-likelihood gain per user falls below this
DEFAULT_MAX_ITER = 2000
DEFAULT_N_STARTS = 3
#: An EM estimate closer than this to the edge of its range (pi at 0 or 1, a shared rate at
#: 0 or 1, a log Beta parameter at its bound) is reported with a BoundaryWarning.
BOUNDARY_TOL = 1e-6
#: A log-likelihood decrease larger than this (relative to 1 + |loglik|) is a bug.
LOGLIK_DECREASE_TOL = 1e-9

#: Posterior interval probability used by reports and checks (passed explicitly).
INTERVAL_PROB = 0.94
#: Interval probability of leaderboards (strength and rank intervals), as Chatbot Arena publishes them.
LEADERBOARD_LEVEL = 0.95
#: Elo ratings of a leaderboard are anchored so that their mean is this (unless a model is named).
ELO_ANCHOR = 1000.0

#: Number of votes above which the command line reports progress stage by stage.
PROGRESS_MIN_VOTES = 100_000

#: Seconds between two progress lines of a long loop (the bootstrap's resamples).
PROGRESS_EVERY = 5.0

#: Sampler diagnostics thresholds (named, passed explicitly to checks and reports):
#: largest R-hat, smallest bulk and tail ESS, most divergences, smallest E-BFMI per chain.
DIAGNOSTIC_THRESHOLDS = {"r_hat_max": 1.01, "ess_bulk_min": 400, "ess_tail_min": 400, "divergences_max": 0, "bfmi_min": 0.3}

#: Pareto k above which a PSIS-LOO term is unreliable (Vehtari et al. 2024, for the usual
#: number of draws; ArviZ computes the sample-size-specific value as ``good_k``).
PARETO_K_MAX = 0.7

#: Model comparison: the two-type model counts as evidence of careless users only when its
#: user-level elpd beats the homogeneous model's by more than this many standard errors of
#: the difference (and by more than ``ELPD_MIN_DIFF`` in absolute terms).
ELPD_SE_FACTOR = 2.0
ELPD_MIN_DIFF = 4.0

#: Misfit checks of every EM fit (docs/design.md section 9): family-wise false-alarm level of the
#: checks together (each of the m checks that run is held to MISFIT_LEVEL / m, Bonferroni),
#: and parametric bootstrap replicates of the fitted model behind each check's null.
MISFIT_LEVEL = 0.01
CHECK_DRAWS = 100

#: Default level of the cross-fitted filter (``filter_crossfit``): the expected share of
#: careless users' votes among the kept votes. The kept votes' favoured-model win rate is then
#: within about CROSSFIT_ALPHA * (w - 1/2) of the attentive rate w (0.01 at w = 0.7).
CROSSFIT_ALPHA = 0.05

#: How the command line writes a table as JSON lines (``DataFrame.to_json`` keywords), in
#: memory and partition by partition from Dask alike: text as written (not escaped to ASCII),
#: ISO dates, 15 significant digits (the most pandas writes).
JSON_LINES = {"orient": "records", "lines": True, "force_ascii": False, "date_format": "iso", "double_precision": 15}
