import sys

from cen.cli import main

sys.exit(main())
