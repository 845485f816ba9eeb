import sys

from swarmd.backends.common import main

sys.exit(main(sys.argv[1:]))
