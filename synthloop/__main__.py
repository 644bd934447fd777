import sys

from synthloop.cli import main

sys.exit(main())
