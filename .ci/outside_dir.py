"""Print a fresh empty folder from which no ``shared/data`` folder can be reached.

stvlm finds a data folder by walking up from the working directory and from its own
install location; the embedded-data step of ``.ci/run`` works in this folder so that the
package's own copy of the data is all there is.
"""

import os
import pathlib
import sys
import tempfile


def _reachable(folder: pathlib.Path) -> bool:
    return any((p / "shared" / "data").exists() for p in (folder, *folder.parents))


for base in (os.environ.get("TMPDIR"), "/tmp", "/dev/shm", os.path.expanduser("~"), "/var/tmp"):
    if base and os.path.isdir(base) and os.access(base, os.W_OK):
        base = pathlib.Path(base).resolve()
        if not _reachable(base):
            print(tempfile.mkdtemp(prefix="stvlm-alone-", dir=base))
            sys.exit(0)
sys.exit("no writable folder found from which no shared/data folder is reachable")
