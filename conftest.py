"""Settings for every test session, the notebooks' included (pytest loads this file for
``tests/`` and ``notebooks/`` alike): the notebooks run with their quick settings
(``COMPAREMODE_QUICK=1``: smaller simulations and shorter chains, the same cells and checks)
whether or not ``CI`` is set, so the README's test command takes minutes on any machine. A
reader who runs a notebook by hand gets the full settings; ``COMPAREMODE_QUICK=0 pytest``
runs them in full under pytest."""

import os

os.environ.setdefault("COMPAREMODE_QUICK", "1")
