"""``python -m airflow_mlsecops.cli``: the ``mlsecops`` command without its script on PATH."""

import sys

from airflow_mlsecops.cli import main

sys.exit(main())
