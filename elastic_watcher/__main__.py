"""``python -m elastic_watcher build|deploy|watch ...``: the ``lsassdump elastic`` command on its own."""

import sys

from elastic_watcher.cli import main

if __name__ == "__main__":
    sys.exit(main())
