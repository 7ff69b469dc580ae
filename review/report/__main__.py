"""`python -m review.report --output-dir DIR [--run-id ID]`: rebuild a run's report."""

import sys

from review.report.page import main

sys.exit(main())
