"""``python -m recstack.serve --name NAME --path BUNDLE``: serve a bundle over HTTP."""

import sys

from recstack.serve.runner import main

if __name__ == "__main__":
    sys.exit(main())
