"""Private by default: the modes of everything the pipeline writes.

The warehouse, its run copies, the BI files and the quality docs hold personal data, so
they are created owner-only: a process umask of 077 where runs start (the CLI, the
Dagster code location, the warehouse resource) covers every file DuckDB, dbt and Great
Expectations create, and the files we publish get explicit modes on top, so a caller
with a looser umask cannot widen them.

One documented exception: `CDP_BI_GROUP=<group>` makes the *published* BI files
(`bi.duckdb`, `bi_parquet/`) readable by that group (0640 files, 0750 folders, group
set to it), and lets the group traverse the warehouse folder (0710: open by name, not
list). The warehouse itself, the run copies and the quality docs stay owner-only.
"""

from __future__ import annotations

import grp
import os
from pathlib import Path

PRIVATE_UMASK = 0o077
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
GROUP_READ_FILE = 0o640
GROUP_READ_DIR = 0o750
GROUP_TRAVERSE_DIR = 0o710
BI_GROUP_ENV = "CDP_BI_GROUP"


class FileModeError(Exception):
    """A file-mode setting that cannot be applied (e.g. an unknown CDP_BI_GROUP)."""


def apply_private_umask() -> None:
    """Files and folders this process creates from now on are owner-only."""
    os.umask(PRIVATE_UMASK)


def bi_group_id() -> int | None:
    """The group the BI files are shared with (`CDP_BI_GROUP`, a name or a number), or None."""
    value = os.environ.get(BI_GROUP_ENV, "").strip()
    if not value:
        return None
    try:
        return grp.getgrnam(value).gr_gid
    except KeyError:
        pass
    if value.isdigit():
        return int(value)
    raise FileModeError(
        f"{BI_GROUP_ENV}={value!r} is not a group on this machine; create it "
        f"(`groupadd {value}`), use an existing group, or unset {BI_GROUP_ENV} to keep the "
        "BI files owner-only"
    )


def make_private_dir(folder: Path) -> None:
    """Create `folder` (and missing parents) owner-only; an existing folder is left as it is."""
    folder = Path(folder)
    if folder.is_dir():
        return
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    for created in missing:
        os.chmod(created, PRIVATE_DIR)


def prepare_warehouse_folder(folder: Path) -> None:
    """Create the warehouse folder owner-only; with a BI group, let that group traverse it.

    A folder that existed before is only widened for the BI group when we own it, never
    narrowed: an operator's own choice of mode stays.
    """
    folder = Path(folder)
    make_private_dir(folder)
    gid = bi_group_id()
    if gid is None:
        return
    st = folder.stat()
    if st.st_uid != os.getuid():
        return
    if st.st_gid != gid:
        os.chown(folder, -1, gid)
    os.chmod(folder, (st.st_mode & 0o777) | GROUP_TRAVERSE_DIR)


def set_published_modes(path: Path) -> None:
    """Give a published BI file or folder (recursively) its mode: private, or the BI group's."""
    gid = bi_group_id()
    file_mode, dir_mode = (
        (PRIVATE_FILE, PRIVATE_DIR) if gid is None else (GROUP_READ_FILE, GROUP_READ_DIR)
    )
    paths = [Path(path)]
    if paths[0].is_dir():
        paths += list(paths[0].rglob("*"))
    for item in paths:
        if gid is not None:
            os.chown(item, -1, gid)
        os.chmod(item, dir_mode if item.is_dir() else file_mode)
