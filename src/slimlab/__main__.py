import sys

from slimlab.cli.main import main

sys.exit(main())
