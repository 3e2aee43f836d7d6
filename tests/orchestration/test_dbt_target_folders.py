"""dbt's per-command target folders do not pile up run after run."""

from __future__ import annotations

import os
import time

from orchestration.dbt_in_process import prune_invocation_folders


def _folder(root, name, age_seconds):
    path = root / name
    path.mkdir()
    (path / "manifest.json").write_text("{}")
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def test_only_the_newest_old_folders_are_kept_and_young_ones_never_go(tmp_path):
    old = [
        _folder(tmp_path, f"dbt_marts-{i:07x}-abcdef{i % 10}", 86_400 + i * 60) for i in range(5)
    ]
    young = [_folder(tmp_path, f"dbt_staging-{i:07x}-1234567", 60 + i) for i in range(3)]
    other = _folder(tmp_path, "compiled", 10 * 86_400)
    seeded = tmp_path / "partial_parse.msgpack"
    seeded.write_bytes(b"x")

    removed = prune_invocation_folders(tmp_path, keep=4, min_age_seconds=3600)

    # the 4 newest are the 3 young ones and the youngest old one; the 4 older old ones go
    assert removed == 4
    assert all(p.exists() for p in young)
    assert old[0].exists()
    assert not any(p.exists() for p in old[1:])
    assert other.exists() and seeded.exists()  # not dbt command folders: untouched


def test_a_missing_target_folder_is_not_an_error(tmp_path):
    assert prune_invocation_folders(tmp_path / "absent") == 0
