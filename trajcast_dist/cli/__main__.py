import sys

from trajcast_dist.cli.main import main

sys.exit(main())
