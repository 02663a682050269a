import sys

from aiolwm2m.cli.main import main

sys.exit(main())
