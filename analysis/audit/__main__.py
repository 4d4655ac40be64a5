import sys

from analysis.audit.cli import main

sys.exit(main())
