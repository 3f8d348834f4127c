import sys

from rtamt.cli import main

sys.exit(main())
